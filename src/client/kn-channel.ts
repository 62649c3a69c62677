import { DinomoError, fromWireError, type ErrorCode } from '../errors/index.js';
import { BatchWriter, WireStatus, readResponses, type WireOpCode } from '../kn/index.js';
import type { Clock, TimerHandle } from '../time/index.js';

/** The result of one request, before the public client shapes it. */
export interface RawResult {
  status: number;
  value: Uint8Array | null;
}

interface Pending {
  resolve: (result: RawResult) => void;
  reject: (err: DinomoError) => void;
  deadlineUs: number;
}

export interface KnChannelOptions {
  rank: number;
  requestTimeoutMs: number;
  inflightMax: number;
}

/**
 * The client side of one KN thread's data path. Requests issued during one tick are packed into one
 * batch and posted together (DESIGN.md section 9: never one message per operation). In-flight
 * requests are bounded (OVERLOADED beyond), and each has a deadline, checked by one sweep timer
 * rather than a timer per request.
 */
export class KnChannel {
  private readonly post: (batch: Uint8Array) => void;
  private readonly clock: Clock;
  private readonly options: KnChannelOptions;
  private readonly writer = new BatchWriter();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private flushTimer: TimerHandle | null = null;
  private sweepTimer: TimerHandle | null = null;
  private closedWith: DinomoError | null = null;
  private refusingWith: DinomoError | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(post: (batch: Uint8Array) => void, clock: Clock, options: KnChannelOptions) {
    this.post = post;
    this.clock = clock;
    this.options = options;
  }

  get inflight(): number {
    return this.pending.size;
  }

  submit(op: WireOpCode, key: Uint8Array, value: Uint8Array | null): Promise<RawResult> {
    if (this.closedWith !== null) return Promise.reject(this.closedWith);
    if (this.refusingWith !== null) return Promise.reject(this.refusingWith);
    if (this.pending.size >= this.options.inflightMax) {
      return Promise.reject(
        new DinomoError(
          'OVERLOADED',
          `${this.pending.size} requests in flight to KN thread ${this.options.rank}`,
        ),
      );
    }
    const id = this.nextId;
    this.nextId = this.nextId === 0xffff_ffff ? 1 : this.nextId + 1;
    this.writer.addRequest(op, id, key, value);
    if (this.flushTimer === null) this.flushTimer = this.clock.setTimer(0, () => this.flush());
    if (this.sweepTimer === null) this.scheduleSweep();
    return new Promise<RawResult>((resolve, reject) => {
      this.pending.set(id, {
        resolve,
        reject,
        deadlineUs: this.clock.nowUs() + this.options.requestTimeoutMs * 1000,
      });
    });
  }

  /** Handles one response batch from the KN thread. */
  onResponses(batch: Uint8Array): void {
    readResponses(batch, (id, status, payload, code, message) => {
      const p = this.pending.get(id);
      if (p === undefined) return; // Timed out earlier; the late answer is dropped.
      this.settle(id);
      if (status === WireStatus.error && code !== null) p.reject(fromWireError({ code, message }));
      else p.resolve({ status, value: status === WireStatus.ok ? payload : null });
    });
  }

  /**
   * Starts a graceful stop: new requests fail with `code`, the batch being built is sent now, and
   * the promise resolves once every request in flight was answered (or timed out).
   */
  drain(code: ErrorCode, message: string): Promise<void> {
    this.refusingWith = new DinomoError(code, message);
    this.flushTimer?.cancel();
    this.flush();
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private settle(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** Fails every pending and future request with `code` (worker death, cluster stop). */
  close(code: ErrorCode, message: string): void {
    this.closedWith = new DinomoError(code, message);
    this.flushTimer?.cancel();
    this.sweepTimer?.cancel();
    for (const p of this.pending.values()) p.reject(this.closedWith);
    this.pending.clear();
    this.settle(0);
  }

  /**
   * The KN thread died: requests in flight fail with UNAVAILABLE (they may have taken effect), and
   * later ones with TRYAGAIN, since they were never sent: the client retries them once the thread's
   * slots have a new owner.
   */
  disconnect(message: string): void {
    this.close('UNAVAILABLE', message);
    this.closedWith = new DinomoError('TRYAGAIN', `${message}; the request was not sent`);
  }

  private flush(): void {
    this.flushTimer = null;
    if (this.writer.count > 0) this.post(this.writer.take());
  }

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimer(
      Math.min(this.options.requestTimeoutMs * 250, 100_000),
      () => {
        this.sweepTimer = null;
        const now = this.clock.nowUs();
        for (const [id, p] of this.pending) {
          if (p.deadlineUs > now) continue;
          this.pending.delete(id);
          p.reject(
            new DinomoError(
              'TIMEOUT',
              `no answer from KN thread ${this.options.rank} in ${this.options.requestTimeoutMs} ms`,
            ),
          );
        }
        if (this.pending.size > 0 && this.closedWith === null) this.scheduleSweep();
      },
    );
  }
}
