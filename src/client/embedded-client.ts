import { DinomoError, isDinomoError } from '../errors/index.js';
import { WireOp, WireStatus, type WireOpCode } from '../kn/index.js';
import type { Clock } from '../time/index.js';
import { slotOfKey } from '../routing/index.js';
import type { KnChannel, RawResult } from './kn-channel.js';
import { keyBytes, valueBytes } from './validate.js';

/** The key-value interface every dinomo client has (embedded, and later RESP-backed remote clients). */
export interface KvClient {
  /** Stores `value` under `key`; resolves once the write is committed in the DPM. */
  put(key: string | Uint8Array, value: string | Uint8Array): Promise<void>;
  /** The newest value (a Buffer), or null when the key is absent. */
  get(key: string | Uint8Array): Promise<Buffer | null>;
  /** Removes the key; true when it existed. */
  delete(key: string | Uint8Array): Promise<boolean>;
}

/**
 * How a client retries a request its KN thread refused without effect: MOVED (the slot has another
 * owner; the slot map is re-read, it is updated in place when an epoch is committed) and TRYAGAIN
 * (the slot is being handed over). Other errors are never retried: a TIMEOUT may have taken effect.
 */
export interface RetryPolicy {
  clock: Clock;
  delayUs: number;
  /** Give up (with the last MOVED or TRYAGAIN) after retrying this long. */
  retryForUs: number;
}

/** Routes each request straight to the KN thread that owns the key's slot. */
export class EmbeddedClient implements KvClient {
  private readonly channels: readonly KnChannel[];
  private readonly slotMap: Uint16Array;
  private readonly retry: RetryPolicy | null;

  constructor(
    channels: readonly KnChannel[],
    slotMap: Uint16Array,
    retry: RetryPolicy | null = null,
  ) {
    this.channels = channels;
    this.slotMap = slotMap;
    this.retry = retry;
  }

  async put(key: string | Uint8Array, value: string | Uint8Array): Promise<void> {
    const k = keyBytes(key);
    const v = valueBytes(value);
    await this.submit(WireOp.put, k, v);
  }

  async get(key: string | Uint8Array): Promise<Buffer | null> {
    const k = keyBytes(key);
    const result = await this.submit(WireOp.get, k, null);
    if (result.value === null) return null;
    // The payload is a view into a batch this thread received and owns: no copy needed.
    return Buffer.from(result.value.buffer, result.value.byteOffset, result.value.length);
  }

  async delete(key: string | Uint8Array): Promise<boolean> {
    const k = keyBytes(key);
    const result = await this.submit(WireOp.delete, k, null);
    return result.status === WireStatus.ok;
  }

  private async submit(
    op: WireOpCode,
    key: Uint8Array,
    value: Uint8Array | null,
  ): Promise<RawResult> {
    const retry = this.retry;
    const giveUpUs = retry === null ? 0 : retry.clock.nowUs() + retry.retryForUs;
    for (;;) {
      try {
        return await this.channelFor(key).submit(op, key, value);
      } catch (err) {
        const refused = isDinomoError(err) && (err.code === 'MOVED' || err.code === 'TRYAGAIN');
        if (retry === null || !refused || retry.clock.nowUs() >= giveUpUs) throw err;
        await new Promise<void>((resolve) => retry.clock.setTimer(retry.delayUs, resolve));
      }
    }
  }

  private channelFor(key: Uint8Array): KnChannel {
    const rank = this.slotMap[slotOfKey(key)] as number;
    const channel = this.channels[rank];
    if (channel === undefined)
      throw new DinomoError('INTERNAL', `no channel for KN thread rank ${rank}`);
    return channel;
  }
}
