import { DinomoError, isDinomoError } from '../errors/index.js';
import { systemClock } from '../time/index.js';
import type { Clock, TimerHandle } from '../time/index.js';
import type { ActorSystem } from './system.js';
import { connectTcpTransport, type TcpTransport } from './tcp-transport.js';
import type { ConnectTcpTransportOptions } from './tcp-options.js';
import type { ActorRef, Message, ReplyTo } from './types.js';

/** Something that asks actors: an ActorSystem, or a TcpLink in front of one. */
export interface Asker {
  ask<Req extends Message, Res>(
    ref: ActorRef<Req>,
    makeMsg: (replyTo: ReplyTo<Res>) => NoInfer<Req>,
    timeoutMs: number,
  ): Promise<Res>;
}

export interface TcpLinkOptions extends ConnectTcpTransportOptions {
  /** The first pause before connecting again after a failure; it doubles up to maxRetryMs. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** Told when the link comes up and when it goes down (logging, tests). */
  readonly onChange?: (up: boolean) => void;
}

const defaultRetryMs = 50;
const defaultMaxRetryMs = 1_000;

/**
 * A TCP actor transport to one peer process that keeps itself connected: when the connection
 * closes (the peer restarted, the network broke) it connects again, with a doubling pause, until
 * close(). A process that must survive restarts of another one (a KN thread and its DPM server,
 * the monitor and the DPM) asks through it: while the link is down an ask fails at once with
 * UNAVAILABLE, and an ask cut off by a closing connection fails with UNAVAILABLE too, never with
 * the CLOSED that means "shut down on purpose". Both are transient: the caller retries later.
 */
export class TcpLink implements Asker {
  private readonly system: ActorSystem;
  private readonly options: TcpLinkOptions;
  private readonly clock: Clock;
  private readonly target: string;
  private transport: TcpTransport | null = null;
  private retryTimer: TimerHandle | null = null;
  private pauseMs: number;
  private closed = false;
  private upWaiters: UpWaiter[] = [];
  /** Why the last connection attempt was refused (a wrong secret); null once connected. */
  private refusal: DinomoError | null = null;

  constructor(system: ActorSystem, options: TcpLinkOptions) {
    this.system = system;
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.target = `${options.host ?? '127.0.0.1'}:${options.port}`;
    this.pauseMs = options.retryMs ?? defaultRetryMs;
    this.connect();
  }

  get up(): boolean {
    return this.transport?.isOpen === true;
  }

  /**
   * Resolves once the link is up. Rejects with UNAVAILABLE if it is not within `timeoutMs`, with
   * UNAUTHORIZED at once when the peer refused this process's proof of the cluster secret, and
   * with CLOSED when the link is closed meanwhile.
   */
  waitUp(timeoutMs: number): Promise<void> {
    if (this.up) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closedError());
    if (this.refusal !== null) return Promise.reject(this.refusal);
    return new Promise<void>((resolve, reject) => {
      const waiter: UpWaiter = {
        wake: () => {
          timer.cancel();
          resolve();
        },
        fail: (err) => {
          timer.cancel();
          reject(err);
        },
      };
      const timer = this.clock.setTimer(timeoutMs * 1000, () => {
        this.upWaiters = this.upWaiters.filter((w) => w !== waiter);
        reject(this.downError(`not connected within ${timeoutMs} ms`));
      });
      this.upWaiters.push(waiter);
    });
  }

  ask<Req extends Message, Res>(
    ref: ActorRef<Req>,
    makeMsg: (replyTo: ReplyTo<Res>) => NoInfer<Req>,
    timeoutMs: number,
  ): Promise<Res> {
    if (this.closed) return Promise.reject(this.closedError());
    if (!this.up) return Promise.reject(this.downError('reconnecting'));
    return this.system.ask(ref, makeMsg, timeoutMs).catch((err: unknown) => {
      // The connection closed under the ask: the peer may come back, so this is not final.
      if (isDinomoError(err) && err.code === 'CLOSED' && !this.closed) {
        throw this.downError(err.message);
      }
      throw err;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retryTimer?.cancel();
    const wasUp = this.up;
    this.transport?.close();
    this.transport = null;
    if (wasUp) this.options.onChange?.(false);
    this.settleWaiters((w) => w.fail(this.closedError()));
  }

  private closedError(): DinomoError {
    return new DinomoError('CLOSED', `the link to ${this.target} is closed`);
  }

  private downError(why: string): DinomoError {
    return new DinomoError('UNAVAILABLE', `no connection to ${this.target} (${why}); retry later`);
  }

  private settleWaiters(settle: (waiter: UpWaiter) => void): void {
    const waiters = this.upWaiters;
    this.upWaiters = [];
    for (const waiter of waiters) settle(waiter);
  }

  private connect(): void {
    this.retryTimer = null;
    if (this.closed) return;
    connectTcpTransport(this.system, this.options).then(
      (transport) => this.onConnected(transport),
      (err: unknown) => this.onConnectFailed(err),
    );
  }

  /**
   * A refused handshake (a wrong secret, or the peer still holding the last connection) fails the
   * waiters at once, but the link keeps trying, since the peer may be restarting. A stopped actor
   * system ends the link.
   */
  private onConnectFailed(err: unknown): void {
    if (isDinomoError(err) && err.code === 'CLOSED') {
      this.close();
      return;
    }
    if (isDinomoError(err) && err.code === 'UNAUTHORIZED') {
      this.refusal = err;
      this.settleWaiters((w) => w.fail(err));
    }
    this.retryLater();
  }

  private onConnected(transport: TcpTransport): void {
    if (this.closed) {
      transport.close();
      return;
    }
    this.transport = transport;
    this.refusal = null;
    this.pauseMs = this.options.retryMs ?? defaultRetryMs;
    this.options.onChange?.(true);
    this.settleWaiters((w) => w.wake());
    void transport.closed.then(() => {
      if (this.transport !== transport) return;
      this.transport = null;
      this.options.onChange?.(false);
      this.retryLater();
    });
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer !== null) return;
    const pauseMs = this.pauseMs;
    this.pauseMs = Math.min(pauseMs * 2, this.options.maxRetryMs ?? defaultMaxRetryMs);
    this.retryTimer = this.clock.setTimer(pauseMs * 1000, () => this.connect());
  }
}

interface UpWaiter {
  wake: () => void;
  fail: (err: DinomoError) => void;
}
