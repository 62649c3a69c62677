import { valueBytesMax } from '../config/index.js';
import { DinomoError } from '../errors/index.js';

const patternPeriod = 251;
const stampPrefix = 'dnm:';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Benchmark values: deterministic, the same size every time, and different for every write, so that a
 * read can tell which write it saw. Each value starts with a stamp `dnm:<key>:<version>;` and goes on
 * with a printable pattern shifted by the version. The original filled every value with 'a' and stamped
 * the whole command with one timestamp, which made its writes indistinguishable.
 */
export class ValueFactory {
  readonly valueBytes: number;
  private readonly pattern: Uint8Array;

  constructor(valueBytes: number) {
    if (!Number.isInteger(valueBytes) || valueBytes < 0 || valueBytes > valueBytesMax) {
      throw new DinomoError(
        'INVALID_VALUE',
        `valueBytes must be an integer in [0, ${valueBytesMax}], got ${valueBytes}`,
      );
    }
    this.valueBytes = valueBytes;
    // One period of slack lets every version's shifted pattern be a plain subarray copy.
    this.pattern = new Uint8Array(valueBytes + patternPeriod);
    for (let i = 0; i < this.pattern.length; i++) this.pattern[i] = 0x21 + ((i * 7) % 94);
  }

  /**
   * A fresh value for write number `version` of key `keyIndex`. It is a new buffer each time, because
   * a client may keep a reference to the bytes until the write is acknowledged.
   */
  make(keyIndex: number, version: number): Uint8Array {
    const value = new Uint8Array(this.valueBytes);
    const shift = version % patternPeriod;
    value.set(this.pattern.subarray(shift, shift + this.valueBytes));
    const stamp = encoder.encode(`${stampPrefix}${keyIndex}:${version};`);
    value.set(stamp.subarray(0, Math.min(stamp.length, this.valueBytes)));
    return value;
  }
}

export interface ValueStamp {
  keyIndex: number;
  version: number;
}

/** The key index and version a benchmark value was made for, or null if it carries no whole stamp. */
export function readValueStamp(value: Uint8Array): ValueStamp | null {
  const head = decoder.decode(value.subarray(0, 40));
  const match = /^dnm:(\d+):(\d+);/.exec(head);
  if (match === null) return null;
  return { keyIndex: Number(match[1]), version: Number(match[2]) };
}
