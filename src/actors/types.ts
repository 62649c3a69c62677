import type { Clock } from '../time/index.js';
import type { ActorSystem } from './system.js';

/** Every message is one member of a discriminated union on `type`. */
export interface Message {
  readonly type: string;
}

/**
 * A typed reference to an actor: only its address exists at run time, so a ref can travel inside a
 * message to another thread. `__msgType` is never set; it is a function type so that a ref is
 * contravariant in `Msg`: a ref to an actor that accepts `A | B` may be used where a ref accepting
 * `A` is expected, never the reverse. nact's own `Ref<T>` does not check T at all.
 */
export interface ActorRef<Msg extends Message> {
  readonly address: string;
  readonly __msgType?: (msg: Msg) => void;
}

/**
 * Where the answer to one ask goes: the asking system and the ask's id, plain data so that it can be
 * part of a message sent to another thread. `__resType` is type-only, as in ActorRef.
 */
export interface ReplyTo<Res> {
  readonly system: string;
  readonly askId: number;
  readonly __resType?: (value: Res) => void;
}

/** What the runtime does with an actor whose handler threw (or rejected). */
export type CrashAction = 'resume' | 'reset' | 'stop';

/** Given to every handler call; the same object for the life of the actor. */
export interface ActorContext<Msg extends Message> {
  readonly self: ActorRef<Msg>;
  readonly system: ActorSystem;
  /** Answers an ask; later answers to the same ask are ignored. */
  reply<Res>(replyTo: ReplyTo<Res>, value: NoInfer<Res>): void;
  /** Answers an ask with an error; it reaches the asker as a DinomoError with the same code. */
  replyError<Res>(replyTo: ReplyTo<Res>, error: unknown): void;
}

export interface ActorSpec<State, Msg extends Message> {
  /**
   * The state at spawn and after a 'reset'. The same object is reused, so handlers must return new
   * states rather than mutate this one.
   */
  readonly initialState: State;
  /** Handles one message at a time; the next message waits until the returned promise settles. */
  readonly handle: (state: State, msg: Msg, ctx: ActorContext<Msg>) => State | Promise<State>;
  /** Default 'stop': a crash is a bug, and a stopped actor makes it visible to every sender. */
  readonly onCrash?: CrashAction;
  /** Messages queued or in progress beyond which sends are refused; default: the system's. */
  readonly mailboxMax?: number;
}

/** A fault the runtime could not hand back to a caller; it goes to the system's `onError` hook. */
export interface ActorFault {
  /** 'crash': a handler threw; 'transport': a frame could not be sent, decoded or delivered. */
  readonly kind: 'crash' | 'transport';
  /** The actor's address for a crash, or the address the frame was for. */
  readonly address: string;
  readonly messageType?: string;
  /** For a crash, what the runtime did about it. */
  readonly action?: CrashAction;
  readonly error: unknown;
}

export interface ActorSystemOptions {
  readonly node: string;
  readonly process: string | number;
  readonly thread: string | number;
  /** Drives ask timeouts; default: the real clock. */
  readonly clock?: Clock;
  /** Receives crashes and transport faults; default: one line on stderr. It must not throw. */
  readonly onError?: (fault: ActorFault) => void;
  /** Default mailbox bound for actors that do not set their own; default 10 000. */
  readonly mailboxMax?: number;
  /** Asks from this system that may wait for an answer at once; default 10 000. */
  readonly pendingAsksMax?: number;
}

/** Counters since the system started. */
export interface ActorSystemStats {
  readonly actors: number;
  readonly pendingAsks: number;
  /** Messages refused because the mailbox was full (tell returned false or ask got OVERLOADED). */
  readonly dropped: number;
  /** Tells to an actor or system that does not exist or is not reachable. */
  readonly undeliverable: number;
  readonly timeouts: number;
  readonly crashes: number;
  /** Answers that arrived after their ask had timed out or been answered. */
  readonly lateReplies: number;
  /** Answers that could not be sent because no transport reaches the asker. */
  readonly unroutableReplies: number;
}

export interface ActorStats {
  /** Messages queued, counting the one being handled. */
  readonly queued: number;
  readonly mailboxMax: number;
  readonly dropped: number;
  readonly crashes: number;
}
