import { DinomoError } from '../errors/index.js';
import { WireOp, WireStatus } from '../kn/index.js';
import { slotOfKey } from '../routing/index.js';
import type { KnChannel } from './kn-channel.js';
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

/** Routes each request straight to the KN thread that owns the key's slot. */
export class EmbeddedClient implements KvClient {
  private readonly channels: readonly KnChannel[];
  private readonly slotMap: Uint16Array;

  constructor(channels: readonly KnChannel[], slotMap: Uint16Array) {
    this.channels = channels;
    this.slotMap = slotMap;
  }

  async put(key: string | Uint8Array, value: string | Uint8Array): Promise<void> {
    const k = keyBytes(key);
    const v = valueBytes(value);
    await this.channelFor(k).submit(WireOp.put, k, v);
  }

  async get(key: string | Uint8Array): Promise<Buffer | null> {
    const k = keyBytes(key);
    const result = await this.channelFor(k).submit(WireOp.get, k, null);
    if (result.value === null) return null;
    // The payload is a view into a batch this thread received and owns: no copy needed.
    return Buffer.from(result.value.buffer, result.value.byteOffset, result.value.length);
  }

  async delete(key: string | Uint8Array): Promise<boolean> {
    const k = keyBytes(key);
    const result = await this.channelFor(k).submit(WireOp.delete, k, null);
    return result.status === WireStatus.ok;
  }

  private channelFor(key: Uint8Array): KnChannel {
    const rank = this.slotMap[slotOfKey(key)] as number;
    const channel = this.channels[rank];
    if (channel === undefined)
      throw new DinomoError('INTERNAL', `no channel for KN thread rank ${rank}`);
    return channel;
  }
}
