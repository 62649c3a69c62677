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
  private upWaiters: Array<() => void> = [];

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

  /** Resolves once the link is up; rejects with UNAVAILABLE if it is not within `timeoutMs`. */
  waitUp(timeoutMs: number): Promise<void> {
    if (this.up) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs * 1000, () => {
        this.upWaiters = this.upWaiters.filter((w) => w !== wake);
        reject(this.downError(`not connected within ${timeoutMs} ms`));
      });
      const wake = (): void => {
        timer.cancel();
        resolve();
      };
      this.upWaiters.push(wake);
    });
  }

  ask<Req extends Message, Res>(
    ref: ActorRef<Req>,
    makeMsg: (replyTo: ReplyTo<Res>) => NoInfer<Req>,
    timeoutMs: number,
  ): Promise<Res> {
    if (this.closed)
      return Promise.reject(new DinomoError('CLOSED', `the link to ${this.target} is closed`));
    if (!this.up) return Promise.reject(this.downError('reconnecting'));
    return this.system.ask(ref, makeMsg, timeoutMs).catch((err: unknown) => {
      // The connection closed under the ask: the peer may come back, so this is not final.
      if (isDinomoError(err) && err.code === 'CLOSED' && !this.closed)
        throw this.downError(err.message);
      throw err;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.retryTimer?.cancel();
    this.transport?.close();
    this.transport = null;
  }

  private downError(why: string): DinomoError {
    return new DinomoError('UNAVAILABLE', `no connection to ${this.target} (${why}); retry later`);
  }

  private connect(): void {
    this.retryTimer = null;
    if (this.closed) return;
    connectTcpTransport(this.system, this.options).then(
      (transport) => this.onConnected(transport),
      () => this.retryLater(),
    );
  }

  private onConnected(transport: TcpTransport): void {
    if (this.closed) {
      transport.close();
      return;
    }
    this.transport = transport;
    this.pauseMs = this.options.retryMs ?? defaultRetryMs;
    this.options.onChange?.(true);
    const waiters = this.upWaiters;
    this.upWaiters = [];
    for (const wake of waiters) wake();
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
