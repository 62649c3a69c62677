import nact from 'nact';
import type { Ref } from 'nact';
import { DinomoError, fromWireError, isDinomoError, toWireError } from '../errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../time/index.js';
import {
  actorAddress,
  isSystemAddress,
  isValidSegment,
  splitAddress,
  systemAddress,
} from './address.js';
import type { Envelope, MessageEnvelope, ReplyEnvelope } from './codec.js';
import type {
  ActorContext,
  ActorFault,
  ActorRef,
  ActorSpec,
  ActorStats,
  ActorSystemOptions,
  ActorSystemStats,
  CrashAction,
  Message,
  ReplyTo,
} from './types.js';

/** The answer to an ask, before it is handed to the asker's promise. */
type Outcome =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: DinomoError };

/** The untyped part of a ReplyTo, which is all the runtime needs to route an answer. */
interface ReplyAddress {
  readonly system: string;
  readonly askId: number;
}

/** What the wrapper hands to nact: the body plus, for an ask, where its answer goes. */
interface Delivery {
  readonly body: Message;
  readonly reply: ReplyAddress | undefined;
}

interface LocalActor {
  readonly name: string;
  readonly address: string;
  readonly ref: Ref<Delivery>;
  readonly mailboxMax: number;
  readonly onCrash: CrashAction;
  queued: number;
  dropped: number;
  crashes: number;
  /** Asks delivered but not yet started, to be failed if the actor stops before reaching them. */
  readonly waiting: Set<Delivery>;
}

interface PendingAsk {
  readonly settle: (outcome: Outcome) => void;
  readonly timer: TimerHandle;
  /** The system that should answer, if remote: its transport closing fails the ask. */
  readonly peer: string | undefined;
}

/**
 * A connection to one other actor system (another thread over a MessagePort, later another process
 * over TCP). The transport encodes; the system routes.
 */
export interface Transport {
  /** The system address of the other side. */
  readonly peer: string;
  /**
   * Sends one envelope; false if the transport is closed. Throws DinomoError OVERLOADED when the
   * transport holds too much unsent data to take more, and any other error if the envelope cannot
   * be encoded.
   */
  send(envelope: Envelope): boolean;
  close(): void;
}

/** What a transport calls back into; returned by `ActorSystem.attach`. */
export interface TransportLink {
  receive(envelope: Envelope): void;
  /** The transport is closed (by either side): asks waiting on its peer fail with CLOSED. */
  closed(): void;
  fault(error: unknown, address: string): void;
}

const defaultMailboxMax = 10_000;
const defaultPendingAsksMax = 10_000;
/** Node timers overflow beyond 2^31 - 1 ms and would fire at once. */
const askTimeoutMaxMs = 2_147_483_647;

function logFault(fault: ActorFault): void {
  const what = fault.messageType === undefined ? '' : ` handling '${fault.messageType}'`;
  const action = fault.action === undefined ? '' : ` (${fault.action})`;
  const err = fault.error;
  const detail = err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(
    `dinomo actors: ${fault.kind} at ${fault.address}${what}${action}: ${detail}\n`,
  );
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function asDinomoError(err: unknown): DinomoError {
  return isDinomoError(err) ? err : new DinomoError('INTERNAL', messageOf(err));
}

function checkCount(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new DinomoError(
      'INVALID_OPTION',
      `${name} must be a positive integer, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * One nact actor system behind a typed API; production runs one per thread (tests may run several
 * in one thread). See index.ts for the caller's duties.
 */
export class ActorSystem {
  /** `node/process/thread`. */
  readonly address: string;
  private readonly prefix: string;
  private readonly clock: Clock;
  private readonly onError: (fault: ActorFault) => void;
  private readonly mailboxMax: number;
  private readonly pendingAsksMax: number;
  private readonly root: Ref<never>;
  private readonly actors = new Map<string, LocalActor>();
  private readonly pending = new Map<number, PendingAsk>();
  private readonly routes = new Map<string, Transport>();
  private nextAskId = 1;
  private stopped = false;
  private readonly counters = {
    dropped: 0,
    undeliverable: 0,
    timeouts: 0,
    crashes: 0,
    lateReplies: 0,
    unroutableReplies: 0,
  };

  private constructor(options: ActorSystemOptions) {
    this.address = systemAddress(options);
    this.prefix = `${this.address}/`;
    this.clock = options.clock ?? systemClock;
    this.onError = options.onError ?? logFault;
    this.mailboxMax = checkCount(options.mailboxMax, defaultMailboxMax, 'mailboxMax');
    this.pendingAsksMax = checkCount(
      options.pendingAsksMax,
      defaultPendingAsksMax,
      'pendingAsksMax',
    );
    this.root = nact.start();
  }

  /** Starts a system; throws INVALID_OPTION for a bad location or bound. */
  static start(options: ActorSystemOptions): ActorSystem {
    return new ActorSystem(options);
  }

  /**
   * Spawns a local actor named `name` (A-Z a-z 0-9 . _ -, unique in this system). Throws
   * INVALID_OPTION for a bad or taken name, CLOSED after stop().
   */
  spawn<State, Msg extends Message>(name: string, spec: ActorSpec<State, Msg>): ActorRef<Msg> {
    if (this.stopped) throw new DinomoError('CLOSED', `actor system ${this.address} is stopped`);
    const address = actorAddress(this.address, name);
    if (this.actors.has(name))
      throw new DinomoError('INVALID_OPTION', `actor ${address} already exists`);
    const mailboxMax = checkCount(spec.mailboxMax, this.mailboxMax, 'mailboxMax');
    const self: ActorRef<Msg> = Object.freeze({ address });
    const ctx: ActorContext<Msg> = {
      self,
      system: this,
      reply: (replyTo, value) => this.reply(replyTo, value),
      replyError: (replyTo, error) => this.replyError(replyTo, error),
    };
    // nact defers every message, so `actor` is initialised before either function below runs.
    const run = async (state: State, delivery: Delivery): Promise<State> => {
      actor.waiting.delete(delivery);
      try {
        return await spec.handle(state, delivery.body as Msg, ctx);
      } finally {
        actor.queued--;
      }
    };
    const ref = nact.spawn(this.root, run, name, {
      initialState: spec.initialState,
      onCrash: (delivery, error, nactCtx) => nactCtx[this.crashed(actor, delivery, error)],
    });
    const onCrash = spec.onCrash ?? 'stop';
    const actor: LocalActor = {
      name,
      address,
      ref,
      mailboxMax,
      onCrash,
      queued: 0,
      dropped: 0,
      crashes: 0,
      waiting: new Set<Delivery>(),
    };
    this.actors.set(name, actor);
    return self;
  }

  /**
   * A ref to the actor at `address` (`node/process/thread/actor`), in this system or in one reached
   * through an attached transport. Nothing checks that the actor exists or accepts `Msg` until a
   * message is sent. Throws INVALID_OPTION for a malformed address.
   */
  remoteRef<Msg extends Message>(address: string): ActorRef<Msg> {
    splitAddress(address);
    return Object.freeze({ address });
  }

  /**
   * Sends without waiting. Returns false, and drops the message, if the mailbox is full, the actor or
   * its system is unknown or unreachable, or this system is stopped. True means handed to the local
   * mailbox or to the transport, not handled.
   */
  tell<Msg extends Message>(ref: ActorRef<Msg>, msg: NoInfer<Msg>): boolean {
    if (this.stopped) return false;
    const name = this.localName(ref.address);
    if (name !== undefined) {
      const result = this.deliver(name, msg, undefined);
      if (result === 'missing') this.counters.undeliverable++;
      return result === 'ok';
    }
    const route = this.routeFor(ref.address);
    if (!route) {
      this.counters.undeliverable++;
      return false;
    }
    const envelope: MessageEnvelope = {
      kind: 'msg',
      to: ref.address,
      from: this.address,
      replyId: 0,
      body: msg,
    };
    return this.send(route, envelope) === undefined;
  }

  /**
   * Sends `makeMsg(replyTo)` and waits for the answer given to `replyTo`, at most `timeoutMs`
   * milliseconds (mandatory: a positive finite number). Rejects with DinomoError: TIMEOUT,
   * OVERLOADED (full mailbox or too many pending asks), INVALID_OPTION (bad timeout), CLOSED
   * (stopped system or closed transport), INTERNAL (no such actor, crash), or whatever code the
   * actor answered with. Give `Res` explicitly or annotate `replyTo`, or it is `unknown`.
   */
  ask<Req extends Message, Res>(
    ref: ActorRef<Req>,
    makeMsg: (replyTo: ReplyTo<Res>) => NoInfer<Req>,
    timeoutMs: number,
  ): Promise<Res> {
    const refusal = this.refuseAsk(timeoutMs);
    if (refusal) return Promise.reject(refusal);
    const name = this.localName(ref.address);
    const route = name === undefined ? this.routeFor(ref.address) : undefined;
    if (name === undefined && !route) {
      return Promise.reject(
        new DinomoError('INTERNAL', `no route to the system of actor ${ref.address}`),
      );
    }
    const replyTo: ReplyTo<Res> = { system: this.address, askId: this.nextAskId++ };
    let msg: Req;
    try {
      msg = makeMsg(replyTo);
    } catch (err) {
      return Promise.reject(asDinomoError(err));
    }
    const answer = this.expectAnswer<Res>(replyTo.askId, timeoutMs, ref.address, route?.peer);
    if (route) {
      const envelope: MessageEnvelope = {
        kind: 'msg',
        to: ref.address,
        from: this.address,
        replyId: replyTo.askId,
        body: msg,
      };
      const failure = this.send(route, envelope);
      if (failure) this.settle(replyTo.askId, { ok: false, error: failure });
    } else {
      this.deliverOrRefuse(ref.address, msg, replyTo);
    }
    return answer;
  }

  /** Answers an ask (also from outside a handler); later answers to the same ask are ignored. */
  reply<Res>(replyTo: ReplyTo<Res>, value: NoInfer<Res>): void {
    this.answer(replyTo, { ok: true, value });
  }

  /** Answers an ask with an error; a non-DinomoError becomes INTERNAL with its message. */
  replyError<Res>(replyTo: ReplyTo<Res>, error: unknown): void {
    this.answer(replyTo, { ok: false, error: asDinomoError(error) });
  }

  /**
   * Stops a local actor: messages still queued are dropped, and asks among them fail with INTERNAL.
   * False if there is no such local actor.
   */
  stopActor<Msg extends Message>(ref: ActorRef<Msg>): boolean {
    const name = this.localName(ref.address);
    const actor = name === undefined ? undefined : this.actors.get(name);
    if (!actor) return false;
    this.retire(actor);
    nact.stop(actor.ref);
    return true;
  }

  /** Counters for a local actor, or undefined if there is none at that address. */
  actorStats<Msg extends Message>(ref: ActorRef<Msg>): ActorStats | undefined {
    const name = this.localName(ref.address);
    const actor = name === undefined ? undefined : this.actors.get(name);
    if (!actor) return undefined;
    const { queued, mailboxMax, dropped, crashes } = actor;
    return { queued, mailboxMax, dropped, crashes };
  }

  stats(): ActorSystemStats {
    return { actors: this.actors.size, pendingAsks: this.pending.size, ...this.counters };
  }

  /**
   * For transports only: routes messages for `transport.peer` through `transport`. Throws
   * INVALID_OPTION if that peer already has a transport, or is this system.
   */
  attach(transport: Transport): TransportLink {
    const peer = transport.peer;
    if (!isSystemAddress(peer) || peer === this.address) {
      throw new DinomoError(
        'INVALID_OPTION',
        `'${peer}' is not another system's address node/process/thread`,
      );
    }
    if (this.routes.has(peer))
      throw new DinomoError('INVALID_OPTION', `${peer} already has a transport`);
    if (this.stopped) throw new DinomoError('CLOSED', `actor system ${this.address} is stopped`);
    this.routes.set(peer, transport);
    return {
      receive: (envelope) => this.receive(envelope),
      closed: () => this.detach(transport),
      fault: (error, address) => this.report({ kind: 'transport', address, error }),
    };
  }

  /**
   * Stops every actor, closes every attached transport and fails every pending ask with CLOSED.
   * Idempotent.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const transport of [...this.routes.values()]) transport.close();
    this.routes.clear();
    this.actors.clear();
    nact.stop(this.root);
    const closed = new DinomoError('CLOSED', `actor system ${this.address} stopped`);
    for (const askId of [...this.pending.keys()]) this.settle(askId, { ok: false, error: closed });
  }

  private refuseAsk(timeoutMs: number): DinomoError | undefined {
    if (this.stopped) return new DinomoError('CLOSED', `actor system ${this.address} is stopped`);
    if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > askTimeoutMaxMs) {
      return new DinomoError(
        'INVALID_OPTION',
        `ask needs a timeout in milliseconds, > 0 and <= ${askTimeoutMaxMs}; got ${String(timeoutMs)}`,
      );
    }
    if (this.pending.size >= this.pendingAsksMax) {
      return new DinomoError(
        'OVERLOADED',
        `${this.pending.size} asks are already waiting (pendingAsksMax)`,
      );
    }
    return undefined;
  }

  /** Registers a pending ask and its timer; the promise settles exactly once. */
  private expectAnswer<Res>(
    askId: number,
    timeoutMs: number,
    address: string,
    peer: string | undefined,
  ): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs * 1000, () => {
        if (!this.pending.delete(askId)) return;
        this.counters.timeouts++;
        reject(new DinomoError('TIMEOUT', `no answer from ${address} within ${timeoutMs} ms`));
      });
      const settle = (outcome: Outcome): void => {
        if (outcome.ok) resolve(outcome.value as Res);
        else reject(outcome.error);
      };
      this.pending.set(askId, { settle, timer, peer });
    });
  }

  private settle(askId: number, outcome: Outcome): void {
    const pending = this.pending.get(askId);
    if (!pending) {
      this.counters.lateReplies++;
      return;
    }
    this.pending.delete(askId);
    pending.timer.cancel();
    pending.settle(outcome);
  }

  /** The actor name if `address` is in this system, else undefined. */
  private localName(address: string): string | undefined {
    return address.startsWith(this.prefix) ? address.slice(this.prefix.length) : undefined;
  }

  /**
   * The transport to the system of `address`. A malformed address finds none: routes hold only
   * well-formed system addresses, so tell and ask need not validate refs that arrived in messages.
   */
  private routeFor(address: string): Transport | undefined {
    return this.routes.get(address.slice(0, address.lastIndexOf('/')));
  }

  private deliver(
    name: string,
    body: Message,
    reply: ReplyAddress | undefined,
  ): 'ok' | 'full' | 'missing' {
    const actor = isValidSegment(name) ? this.actors.get(name) : undefined;
    if (!actor) return 'missing';
    if (actor.queued >= actor.mailboxMax) {
      actor.dropped++;
      this.counters.dropped++;
      return 'full';
    }
    actor.queued++;
    const delivery: Delivery = { body, reply };
    if (reply) actor.waiting.add(delivery);
    nact.dispatch(actor.ref, delivery);
    return 'ok';
  }

  /** Delivers an ask to a local actor, or answers it at once when it cannot be delivered. */
  private deliverOrRefuse(address: string, body: Message, reply: ReplyAddress): void {
    const result = this.deliver(this.localName(address) ?? '', body, reply);
    if (result === 'ok') return;
    const error =
      result === 'full'
        ? new DinomoError('OVERLOADED', `the mailbox of ${address} is full`)
        : new DinomoError('INTERNAL', `no actor ${address}`);
    this.answer(reply, { ok: false, error });
  }

  /** Sends an envelope; returns the error to give an ask if it could not be sent. */
  private send(route: Transport, envelope: Envelope): DinomoError | undefined {
    try {
      if (route.send(envelope)) return undefined;
      return new DinomoError('CLOSED', `the transport to ${route.peer} is closed`);
    } catch (err) {
      // A full transport is back-pressure, not a fault: the asker may retry later.
      if (isDinomoError(err) && err.code === 'OVERLOADED') return err;
      const messageType = envelope.kind === 'msg' ? envelope.body.type : undefined;
      this.report({
        kind: 'transport',
        address: envelope.to,
        error: err,
        ...(messageType === undefined ? {} : { messageType }),
      });
      return new DinomoError('INTERNAL', `cannot send to ${envelope.to}: ${messageOf(err)}`);
    }
  }

  /** Routes an answer to the asking system, here or through a transport. */
  private answer(replyTo: ReplyAddress, outcome: Outcome): void {
    if (replyTo.system === this.address) {
      this.settle(replyTo.askId, outcome);
      return;
    }
    const route = this.routes.get(replyTo.system);
    if (!route) {
      this.counters.unroutableReplies++;
      return;
    }
    const head = {
      kind: 'reply',
      to: replyTo.system,
      from: this.address,
      replyId: replyTo.askId,
    } as const;
    const envelope: ReplyEnvelope = outcome.ok
      ? { ...head, body: outcome.value }
      : { ...head, error: toWireError(outcome.error) };
    const failure = this.send(route, envelope);
    // A value that cannot be encoded still owes the asker an answer, and an error always encodes.
    if (failure && failure.code === 'INTERNAL' && outcome.ok) {
      this.send(route, { ...head, error: toWireError(failure) });
    }
  }

  private receive(envelope: Envelope): void {
    if (envelope.kind === 'reply') {
      if (envelope.to !== this.address) {
        this.counters.unroutableReplies++;
        return;
      }
      const outcome: Outcome =
        envelope.error === undefined
          ? { ok: true, value: envelope.body }
          : { ok: false, error: fromWireError(envelope.error) };
      this.settle(envelope.replyId, outcome);
      return;
    }
    if (envelope.replyId > 0) {
      this.deliverOrRefuse(envelope.to, envelope.body, {
        system: envelope.from,
        askId: envelope.replyId,
      });
      return;
    }
    const name = this.localName(envelope.to) ?? '';
    if (this.deliver(name, envelope.body, undefined) === 'missing') this.counters.undeliverable++;
  }

  private detach(transport: Transport): void {
    if (this.routes.get(transport.peer) !== transport) return;
    this.routes.delete(transport.peer);
    const closed = new DinomoError('CLOSED', `the transport to ${transport.peer} closed`);
    for (const [askId, pending] of [...this.pending]) {
      if (pending.peer === transport.peer) this.settle(askId, { ok: false, error: closed });
    }
  }

  /** Supervision: report, answer the failed ask, then resume, reset or stop as the actor asked. */
  private crashed(actor: LocalActor, delivery: Delivery | undefined, error: unknown): CrashAction {
    actor.crashes++;
    this.counters.crashes++;
    const action = actor.onCrash;
    const messageType = delivery?.body.type;
    const where = messageType === undefined ? {} : { messageType };
    this.report({ kind: 'crash', address: actor.address, action, error, ...where });
    if (delivery?.reply) {
      // The asker learns that the actor crashed rather than waiting for its timeout.
      const failure = isDinomoError(error)
        ? error
        : new DinomoError(
            'INTERNAL',
            `actor ${actor.address} crashed handling '${delivery.body.type}': ${messageOf(error)}`,
          );
      this.answer(delivery.reply, { ok: false, error: failure });
    }
    if (action === 'stop') this.retire(actor);
    return action;
  }

  /** Forgets a local actor and fails the asks still queued for it. */
  private retire(actor: LocalActor): void {
    if (this.actors.get(actor.name) === actor) this.actors.delete(actor.name);
    const gone = new DinomoError('INTERNAL', `actor ${actor.address} stopped before answering`);
    for (const delivery of actor.waiting) {
      if (delivery.reply) this.answer(delivery.reply, { ok: false, error: gone });
    }
    actor.waiting.clear();
  }

  private report(fault: ActorFault): void {
    try {
      this.onError(fault);
    } catch (err) {
      // The hook must not throw; if it does, neither fault may vanish.
      logFault(fault);
      logFault({ kind: 'crash', address: this.address, error: err });
    }
  }
}
