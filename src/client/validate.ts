import { keyBytesMax, valueBytesMax } from '../config/limits.js';
import { DinomoError } from '../errors/index.js';

/**
 * Edge validation of keys and values: the public API accepts strings (UTF-8) and Uint8Arrays and
 * refuses everything else with a stable code before anything is sent, so bad input stores nothing.
 */
export function keyBytes(key: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof key === 'string') bytes = Buffer.from(key, 'utf8');
  else if (key instanceof Uint8Array) bytes = key;
  else
    throw new DinomoError(
      'INVALID_KEY',
      `a key must be a string or a Uint8Array, got ${describe(key)}`,
    );
  if (bytes.length === 0) throw new DinomoError('INVALID_KEY', 'a key must not be empty');
  if (bytes.length > keyBytesMax) {
    throw new DinomoError(
      'INVALID_KEY',
      `a key is at most ${keyBytesMax} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

export function valueBytes(value: unknown): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === 'string') bytes = Buffer.from(value, 'utf8');
  else if (value instanceof Uint8Array) bytes = value;
  else
    throw new DinomoError(
      'INVALID_VALUE',
      `a value must be a string or a Uint8Array, got ${describe(value)}`,
    );
  if (bytes.length > valueBytesMax) {
    throw new DinomoError(
      'INVALID_VALUE',
      `a value is at most ${valueBytesMax} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
