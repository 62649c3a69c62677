import { DinomoError, isDinomoError } from '../errors/index.js';
import { WireOp, WireStatus, type WireOpCode } from '../kn/index.js';
import type { Clock } from '../time/index.js';
import { slotOfKey } from '../routing/index.js';
import type { KnChannel, RawResult } from './kn-channel.js';
import type { LatencyFeedback } from './latency-feedback.js';
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
 * owner) and TRYAGAIN (the slot is being handed over, or its owner has no valid lease). Before each
 * retry the client refreshes its slot map. Other errors are never retried: a TIMEOUT may have
 * taken effect.
 */
export interface RetryPolicy {
  clock: Clock;
  delayUs: number;
  /** Give up (with the last MOVED or TRYAGAIN) after retrying this long. */
  retryForUs: number;
}

export interface RoutingOptions {
  /**
   * Keep a private copy of the slot map, refreshed from the published one only when a request is
   * refused (as a client in another process does: it caches the map it got from the RN). Without
   * it the client reads the published map, which the M-node updates in place, on every request.
   */
  cacheMap?: boolean;
  /** Where the latency of every completed request goes (client feedback for the M-node). */
  feedback?: LatencyFeedback;
  /**
   * Clover mode (shared-everything, docs/baselines.md): any KN thread serves any key, so requests
   * go round-robin over the ranks this returns (the live threads) instead of to a slot's owner.
   */
  spreadOver?: () => readonly number[];
}

/**
 * Where a client finds the channel of a KN thread, and how it refreshes its routing. The embedded
 * cluster hands its channel array; a remote client (remote-client.ts) opens connections on demand
 * and fetches the routing table from the RN.
 */
export interface KnRouter {
  /** The channel of KN thread `rank`; undefined while the client knows no way to reach it. */
  channel(rank: number): KnChannel | undefined;
  /** The routing may be stale (a request was refused or unanswered): fetch it again. */
  refresh(): void;
}

/** Routes each request straight to the KN thread that owns the key's slot. */
export class EmbeddedClient implements KvClient {
  private readonly router: KnRouter;
  private readonly published: Uint16Array;
  private readonly slotMap: Uint16Array;
  private readonly retry: RetryPolicy | null;
  private readonly feedback: LatencyFeedback | null;
  private readonly spreadOver: (() => readonly number[]) | null;
  private nextSpread = 0;

  constructor(
    channels: readonly KnChannel[] | KnRouter,
    slotMap: Uint16Array,
    retry: RetryPolicy | null = null,
    routing: RoutingOptions = {},
  ) {
    this.router = isRouter(channels)
      ? channels
      : { channel: (rank) => channels[rank], refresh: () => {} };
    this.published = slotMap;
    this.slotMap = routing.cacheMap === true ? Uint16Array.from(slotMap) : slotMap;
    this.feedback = routing.feedback ?? null;
    this.spreadOver = routing.spreadOver ?? null;
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
    const clock = retry?.clock;
    const startUs = clock !== undefined && this.feedback !== null ? clock.nowUs() : 0;
    const giveUpUs = retry === null ? 0 : retry.clock.nowUs() + retry.retryForUs;
    for (;;) {
      try {
        const result = await this.channelFor(key).submit(op, key, value);
        if (clock !== undefined) this.feedback?.record(clock.nowUs() - startUs);
        return result;
      } catch (err) {
        const code = isDinomoError(err) ? err.code : null;
        const refused = code === 'MOVED' || code === 'TRYAGAIN';
        // No answer: the owner may have failed and its slots moved on, so look at the map again.
        // A get is retried (it changes nothing); a write is not, since it may have taken effect.
        const unanswered = code === 'TIMEOUT' || code === 'UNAVAILABLE';
        if (unanswered || code === 'FENCED') this.refreshMap();
        const again = refused || (unanswered && op === WireOp.get);
        if (retry === null || !again || retry.clock.nowUs() >= giveUpUs) throw err;
        await new Promise<void>((resolve) => retry.clock.setTimer(retry.delayUs, resolve));
        this.refreshMap();
      }
    }
  }

  /** Copies the published slot map (what a remote client fetches from the RN). */
  private refreshMap(): void {
    this.router.refresh();
    if (this.slotMap !== this.published) this.slotMap.set(this.published);
  }

  private channelFor(key: Uint8Array): KnChannel {
    const rank =
      this.spreadOver === null ? (this.slotMap[slotOfKey(key)] as number) : this.spread();
    const channel = this.router.channel(rank);
    // Not sent anywhere, so retrying is safe: the owner may not have joined yet, or its slots are
    // about to move.
    if (channel === undefined) {
      throw new DinomoError('TRYAGAIN', `no route to KN thread ${rank} yet; retry shortly`);
    }
    return channel;
  }

  private spread(): number {
    const ranks = (this.spreadOver as () => readonly number[])();
    if (ranks.length === 0)
      throw new DinomoError('TRYAGAIN', 'no KN thread is serving; retry shortly');
    this.nextSpread = (this.nextSpread + 1) % ranks.length;
    return ranks[this.nextSpread] as number;
  }
}

function isRouter(channels: readonly KnChannel[] | KnRouter): channels is KnRouter {
  return !Array.isArray(channels);
}
