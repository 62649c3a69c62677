/**
 * The actor runtime: one nact actor system per thread behind a typed wrapper, addresses
 * `node/process/thread/actor`, ask with a mandatory timeout, bounded mailboxes, supervision, and two
 * transports that carry cbor-x frames between systems: a MessagePort between two threads of a
 * process, and TCP between processes (length-prefixed frames, after a handshake in which each side
 * proves with HMAC-SHA256 that it holds the cluster secret; docs/architecture.md has the wire format).
 *
 *   const system = ActorSystem.start({ node: 'n0', process: 0, thread: 1 });
 *   const counter = system.spawn<number, CounterMsg>('counter', { initialState: 0, handle });
 *   system.tell(counter, { type: 'add', by: 2 });
 *   const n = await system.ask<CounterMsg, number>(counter, (replyTo) => ({ type: 'get', replyTo }), 500);
 *   new PortTransport(system, port, 'n0/0/2');   // then system.remoteRef<Msg>('n0/0/2/name')
 *   const server = await TcpTransportServer.listen(system, { port: 7400, secret, onPeer });
 *   const transport = await connectTcpTransport(other, { port: 7400, secret });
 *
 * Failures are DinomoErrors: ask rejects with TIMEOUT, OVERLOADED (full mailbox, too many pending
 * asks), INVALID_OPTION (bad timeout), CLOSED (stopped system, closed transport), INTERNAL (no such
 * actor, crash) or the code the actor answered with; tell returns false instead of throwing.
 * connectTcpTransport rejects with UNAUTHORIZED when the handshake fails (wrong secret, deadline).
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
 *  6. Attach one transport per pair of threads that talk (there is no forwarding: over TCP, an
 *     envelope whose sender is not the peer is dropped), and type remote refs correctly:
 *     `remoteRef<Msg>` is a promise the receiver's handler must keep, since only the envelope and
 *     the presence of a string `type` are checked on arrival.
 *  7. Expect nact to schedule each message with setImmediate: only ask timeouts go through the
 *     injected Clock, so message delivery itself is not under the simulator's control.
 *  8. Give every process the same cluster secret (16 random bytes or more) and run the TCP transport
 *     on a trusted network: the handshake authenticates both ends, but frames are neither encrypted
 *     nor signed after it.
 */
export { ActorSystem, type Transport, type TransportLink } from './system.js';
export { PortTransport } from './port-transport.js';
export { TcpTransport, connectTcpTransport, maxQueuedBytes } from './tcp-transport.js';
export { TcpTransportServer, maxPendingHandshakes } from './tcp-transport-server.js';
export { TcpLink, type Asker, type TcpLinkOptions } from './tcp-link.js';
export {
  defaultTcpHost,
  defaultHandshakeTimeoutMs,
  type TcpTransportOptions,
  type ConnectTcpTransportOptions,
  type TcpTransportServerOptions,
} from './tcp-options.js';
export { FrameReader, encodeFrame, frameHeaderBytes, maxFrameBytes } from './frame-reader.js';
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
