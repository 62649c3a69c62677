/**
 * The actor runtime: one nact actor system per thread behind a typed wrapper, addresses
 * `node/process/thread/actor`, ask with a mandatory timeout, bounded mailboxes, supervision, and a
 * MessagePort transport that carries cbor-x frames between the systems of two threads.
 *
 *   const system = ActorSystem.start({ node: 'n0', process: 0, thread: 1 });
 *   const counter = system.spawn<number, CounterMsg>('counter', { initialState: 0, handle });
 *   system.tell(counter, { type: 'add', by: 2 });
 *   const n = await system.ask<CounterMsg, number>(counter, (replyTo) => ({ type: 'get', replyTo }), 500);
 *   new PortTransport(system, port, 'n0/0/2');   // then system.remoteRef<Msg>('n0/0/2/name')
 *
 * Failures are DinomoErrors: ask rejects with TIMEOUT, OVERLOADED (full mailbox, too many pending
 * asks), INVALID_OPTION (bad timeout), CLOSED (stopped system, closed transport), INTERNAL (no such
 * actor, crash) or the code the actor answered with; tell returns false instead of throwing.
 *
 * The caller's duties:
 *  1. Run one ActorSystem per thread, each with a distinct `node/process/thread` location, and stop
 *     it when the thread is done (stop also closes its transports and fails its pending asks).
 *  2. Make every message a member of a discriminated union on `type`, made of plain data (objects,
 *     arrays, strings, numbers, bigints, booleans, null, Uint8Array, Map, Set): a message to another
 *     thread is copied through cbor-x, so functions and class instances do not survive.
 *  3. Treat messages and states as immutable: a message to a local actor is passed by reference, and
 *     'reset' restores the very `initialState` object given to spawn.
 *  4. Answer every ask exactly once, through `ctx.reply` / `ctx.replyError` (or `system.reply` later)
 *     with the ReplyTo from the message; answer expected failures with replyError rather than a throw.
 *     A throw is a crash: it is reported to `onError`, fails the ask, and resumes, resets or stops the
 *     actor as its `onCrash` says (default 'stop').
 *  5. Give every ask a timeout, and expect OVERLOADED and a false tell under load: mailboxes and
 *     pending asks are bounded and never grow past their bound.
 *  6. Attach one transport per pair of threads that talk (there is no forwarding), and type remote
 *     refs correctly: `remoteRef<Msg>` is a promise the receiver's handler must keep, since only the
 *     envelope and the presence of a string `type` are checked on arrival.
 *  7. Expect nact to schedule each message with setImmediate: only ask timeouts go through the
 *     injected Clock, so message delivery itself is not under the simulator's control.
 */
export { ActorSystem, type Transport, type TransportLink } from './system.js';
export { PortTransport } from './port-transport.js';
export {
  actorAddress,
  splitAddress,
  systemAddress,
  isSystemAddress,
  type SystemLocation,
} from './address.js';
export {
  encodeEnvelope,
  decodeEnvelope,
  type Envelope,
  type MessageEnvelope,
  type ReplyEnvelope,
} from './codec.js';
export type {
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
