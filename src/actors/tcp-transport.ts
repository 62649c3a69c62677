import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { DinomoError, isDinomoError } from '../errors/index.js';
import type { Clock, TimerHandle } from '../time/index.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './codec.js';
import { encodeFrame, FrameReader, maxFrameBytes } from './frame-reader.js';
import {
  decodeHandshake,
  encodeHandshake,
  handshakeProof,
  handshakeVersion,
  maxHandshakeFrameBytes,
  nonceBytes,
  proofMatches,
  type HandshakeMessage,
  type HandshakeRole,
  type Transcript,
} from './tcp-handshake.js';
import {
  checkExpectedPeer,
  checkHost,
  checkPort,
  checkTcpSettings,
  type ConnectTcpTransportOptions,
  type TcpSettings,
} from './tcp-options.js';
import type { ActorSystem, Transport, TransportLink } from './system.js';

/**
 * Connects this process's actor system to one in another process over a TCP socket. Each envelope
 * travels as one cbor-x frame behind a 4-byte big-endian length (frame-reader.ts), and nothing flows
 * before both sides have proved that they hold the cluster secret (tcp-handshake.ts). A frame
 * longer than `maxFrameBytes` is a protocol fault that closes the connection. Closing either end,
 * or the death of the process at the other end, closes both transports, and asks waiting on the
 * other side fail with CLOSED, as with PortTransport.
 *
 *   const server = await TcpTransportServer.listen(b, { port: 0, secret });
 *   const transport = await connectTcpTransport(a, { port: server.port, secret });
 */

/** Above this many bytes queued in the socket, send refuses instead of buffering more. */
export const maxQueuedBytes = 16 * 1024 * 1024;
/** After close, how long the peer has to take the last frames before the socket is destroyed. */
const closeGraceMs = 1_000;
/** TCP keepalive notices a peer whose machine vanished without closing the connection. */
const keepAliveDelayMs = 10_000;

/**
 * Ends a socket after its queued writes, and destroys it if the peer has not closed its side within
 * `closeGraceMs`, so that a peer that stops reading cannot hold the socket open.
 */
function endGracefully(socket: Socket, clock: Clock): void {
  if (socket.destroyed) return;
  const timer = clock.setTimer(closeGraceMs * 1000, () => socket.destroy());
  socket.once('close', () => timer.cancel());
  socket.end();
}

/** One authenticated connection to the actor system at `peer`; see the top of this file. */
export class TcpTransport implements Transport {
  readonly peer: string;
  /** Resolves once the transport is closed, by either side or by a dead connection. */
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private readonly clock: Clock;
  private readonly link: TransportLink;
  private open = true;
  private corked = false;
  private markClosed: () => void = () => {};

  /**
   * For the handshake below only (use connectTcpTransport or TcpTransportServer): takes over an
   * authenticated socket whose reader may already hold the peer's first frames. Throws as
   * ActorSystem.attach does: INVALID_OPTION if `peer` already has a transport, CLOSED if `system`
   * is stopped.
   */
  constructor(
    system: ActorSystem,
    socket: Socket,
    reader: FrameReader,
    peer: string,
    clock: Clock,
  ) {
    this.peer = peer;
    this.socket = socket;
    this.reader = reader;
    this.clock = clock;
    this.closed = new Promise<void>((resolve) => (this.markClosed = resolve));
    this.link = system.attach(this);
    reader.limit = maxFrameBytes;
    // Actor messages are small and latency-bound; send() batches them per tick instead of Nagle.
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveDelayMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // A socket error (reset, broken pipe) is always followed by 'close', which is what the link hears.
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
    // The frames that arrived with the end of the handshake are delivered once the caller has the
    // transport; later chunks queue behind them in the reader, so the order holds either way.
    queueMicrotask(() => this.drain());
  }

  get isOpen(): boolean {
    return this.open;
  }

  /**
   * Sends one envelope; false if the transport is closed. Throws OVERLOADED while more than
   * `maxQueuedBytes` wait in the socket (a peer that does not read must not make this process
   * buffer without bound), and another error if the envelope cannot be encoded or exceeds
   * `maxFrameBytes`.
   */
  send(envelope: Envelope): boolean {
    if (!this.open || !this.socket.writable) return false;
    if (this.socket.writableLength > maxQueuedBytes) {
      throw new DinomoError(
        'OVERLOADED',
        `more than ${maxQueuedBytes} bytes wait to be sent to ${this.peer}; retry later`,
      );
    }
    const frame = encodeFrame(encodeEnvelope(envelope));
    if (!this.corked) {
      // Frames sent in one tick leave in one writev instead of one system call each.
      this.corked = true;
      this.socket.cork();
      queueMicrotask(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    this.socket.write(frame);
    return true;
  }

  close(): void {
    if (!this.open) return;
    endGracefully(this.socket, this.clock);
    this.onClose();
  }

  private onData(chunk: Buffer): void {
    if (!this.open) return;
    this.reader.push(chunk);
    this.drain();
  }

  private drain(): void {
    while (this.open) {
      let frame: Buffer | undefined;
      try {
        frame = this.reader.next();
      } catch (err) {
        // The stream is out of step and nothing after this point can be trusted.
        this.link.fault(err, this.peer);
        this.socket.destroy();
        this.onClose();
        return;
      }
      if (frame === undefined) return;
      this.deliver(frame);
    }
  }

  private deliver(frame: Buffer): void {
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(frame);
    } catch (err) {
      // Framing is intact, so one bad envelope costs only itself, as on a MessagePort.
      this.link.fault(err, this.peer);
      return;
    }
    if (envelope.from !== this.peer) {
      // There is no forwarding, so anything else is a peer speaking for a system it is not.
      const spoofed = new DinomoError(
        'INTERNAL',
        `envelope from ${envelope.from} arrived on the transport to ${this.peer}; dropped`,
      );
      this.link.fault(spoofed, this.peer);
      return;
    }
    this.link.receive(envelope);
  }

  private onClose(): void {
    if (!this.open) return;
    this.open = false;
    this.link.closed();
    this.markClosed();
  }
}

/** How a handshake ends: with an attached transport, or with the reason it failed. */
export type HandshakeResult = TcpTransport | DinomoError;

export interface HandshakeSpec {
  readonly system: ActorSystem;
  readonly socket: Socket;
  readonly role: HandshakeRole;
  readonly settings: TcpSettings;
  /** `host:port` of the other end, for messages. */
  readonly remote: string;
  readonly expectedPeer?: string | undefined;
  /** Called exactly once. */
  readonly done: (result: HandshakeResult) => void;
}

type Stage = 'connecting' | 'hello' | 'challenge' | 'proof' | 'ready' | 'done';

function unauthorized(message: string): DinomoError {
  return new DinomoError('UNAUTHORIZED', message);
}

/**
 * Runs one side of the handshake on a socket (see tcp-handshake.ts for the messages). It owns the
 * socket until the end: then either a TcpTransport takes it over, or it is destroyed. Every
 * failure, including the deadline, destroys the socket before any envelope is read.
 */
class Handshake {
  private readonly spec: HandshakeSpec;
  private readonly reader = new FrameReader(maxHandshakeFrameBytes);
  private readonly nonce = randomBytes(nonceBytes);
  private readonly timer: TimerHandle;
  private stage: Stage;
  private transcript: Transcript | undefined;
  private lastError: Error | undefined;
  private readonly onConnect = (): void => this.hello();
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onClose = (): void => this.closedEarly();

  constructor(spec: HandshakeSpec) {
    this.spec = spec;
    const { socket, role, settings } = spec;
    this.stage = role === 'connector' ? 'connecting' : 'hello';
    this.timer = settings.clock.setTimer(settings.handshakeTimeoutMs * 1000, () => this.expire());
    // Each handshake message waits for the other side's; Nagle would only add delayed-ACK stalls.
    socket.setNoDelay(true);
    // Kept for good: an 'error' without a listener would crash the process, and 'close' follows.
    socket.on('error', (err) => (this.lastError = err));
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    if (role === 'connector') socket.once('connect', this.onConnect);
  }

  private hello(): void {
    if (this.stage !== 'connecting') return;
    this.stage = 'challenge';
    const { system } = this.spec;
    this.write({
      kind: 'hello',
      version: handshakeVersion,
      from: system.address,
      nonce: this.nonce,
    });
  }

  private receive(chunk: Buffer): void {
    this.reader.push(chunk);
    // Frames after the last handshake message stay in the reader for the transport.
    while (this.stage !== 'done') {
      let frame: Buffer | undefined;
      try {
        frame = this.reader.next();
      } catch {
        this.fail(unauthorized(`${this.spec.remote} sent an oversized handshake frame`));
        return;
      }
      if (frame === undefined) return;
      const message = decodeHandshake(frame);
      if (message === undefined || !this.expects(message)) {
        this.fail(unauthorized(`${this.spec.remote} sent a malformed or unexpected handshake`));
        return;
      }
      this.step(message);
    }
  }

  private expects(message: HandshakeMessage): boolean {
    if (this.stage === 'ready') return message.kind === 'ready' || message.kind === 'refused';
    return message.kind === this.stage;
  }

  private step(message: HandshakeMessage): void {
    const { system, settings, remote } = this.spec;
    switch (message.kind) {
      case 'hello': {
        if (message.version !== handshakeVersion) {
          this.fail(
            unauthorized(
              `${remote} speaks handshake version ${message.version}, this process ` +
                `${handshakeVersion}; run the same dinomo version on both sides`,
            ),
          );
          return;
        }
        const t: Transcript = {
          connector: message.from,
          acceptor: system.address,
          connectorNonce: message.nonce,
          acceptorNonce: this.nonce,
        };
        this.transcript = t;
        this.stage = 'proof';
        const proof = handshakeProof(settings.secret, 'acceptor', t);
        this.write({ kind: 'challenge', from: system.address, nonce: this.nonce, proof });
        return;
      }
      case 'challenge': {
        const t: Transcript = {
          connector: system.address,
          acceptor: message.from,
          connectorNonce: this.nonce,
          acceptorNonce: message.nonce,
        };
        if (!proofMatches(handshakeProof(settings.secret, 'acceptor', t), message.proof)) {
          this.fail(
            unauthorized(
              `${remote} does not hold this cluster's secret; give both sides the same secret`,
            ),
          );
          return;
        }
        const expected = this.spec.expectedPeer;
        if (expected !== undefined && message.from !== expected) {
          this.fail(unauthorized(`expected ${expected} at ${remote}, found ${message.from}`));
          return;
        }
        this.transcript = t;
        this.stage = 'ready';
        this.write({ kind: 'proof', proof: handshakeProof(settings.secret, 'connector', t) });
        return;
      }
      case 'proof':
        this.proved(message.proof);
        return;
      case 'ready':
        this.attach(this.transcript?.acceptor ?? '');
        return;
      case 'refused': {
        const peer = this.transcript?.acceptor ?? remote;
        this.fail(
          new DinomoError(message.code, `${peer} refused the connection: ${message.reason}`),
        );
        return;
      }
    }
  }

  /** The acceptor checks the connector's proof, then attaches and says 'ready' (or 'refused'). */
  private proved(proof: Uint8Array): void {
    const { settings, remote, socket } = this.spec;
    const t = this.transcript;
    if (!t || !proofMatches(handshakeProof(settings.secret, 'connector', t), proof)) {
      this.fail(unauthorized(`${remote} does not hold this cluster's secret`));
      return;
    }
    this.finish();
    let transport: TcpTransport;
    try {
      transport = new TcpTransport(
        this.spec.system,
        socket,
        this.reader,
        t.connector,
        settings.clock,
      );
    } catch (err) {
      // The peer proved itself, so it may learn why it is turned away (such as a duplicate).
      const error = asDinomoError(err);
      this.write({ kind: 'refused', code: error.code, reason: error.message });
      endGracefully(socket, settings.clock);
      this.spec.done(error);
      return;
    }
    // Written before any envelope: the transport sends nothing until the system uses it.
    this.write({ kind: 'ready' });
    this.spec.done(transport);
  }

  /** The connector attaches once the acceptor has attached. */
  private attach(peer: string): void {
    const { system, socket, settings } = this.spec;
    this.finish();
    let transport: TcpTransport;
    try {
      transport = new TcpTransport(system, socket, this.reader, peer, settings.clock);
    } catch (err) {
      socket.destroy();
      this.spec.done(asDinomoError(err));
      return;
    }
    this.spec.done(transport);
  }

  private closedEarly(): void {
    const { remote } = this.spec;
    if (this.stage === 'connecting') {
      const why = this.lastError?.message ?? 'connection closed';
      this.fail(new DinomoError('UNAVAILABLE', `cannot connect to ${remote}: ${why}`));
      return;
    }
    const role = this.spec.role === 'connector' ? 'the acceptor' : 'the connector';
    this.fail(
      unauthorized(
        `${remote} (${role}) closed the connection during the handshake; check that both ` +
          'sides use the same cluster secret and dinomo version',
      ),
    );
  }

  private expire(): void {
    const { remote, settings } = this.spec;
    const ms = settings.handshakeTimeoutMs;
    this.fail(
      this.stage === 'connecting'
        ? new DinomoError('UNAVAILABLE', `cannot connect to ${remote} within ${ms} ms`)
        : unauthorized(`the handshake with ${remote} did not finish within ${ms} ms`),
    );
  }

  private fail(error: DinomoError): void {
    if (this.stage === 'done') return;
    this.finish();
    this.spec.socket.destroy();
    this.spec.done(error);
  }

  /** Stops the handshake and hands the socket's events to whoever comes next. */
  private finish(): void {
    this.stage = 'done';
    this.timer.cancel();
    const { socket } = this.spec;
    socket.off('connect', this.onConnect);
    socket.off('data', this.onData);
    socket.off('close', this.onClose);
  }

  private write(message: HandshakeMessage): void {
    this.spec.socket.write(encodeFrame(encodeHandshake(message), maxHandshakeFrameBytes));
  }
}

function asDinomoError(err: unknown): DinomoError {
  return isDinomoError(err)
    ? err
    : new DinomoError('INTERNAL', err instanceof Error ? err.message : String(err));
}

/** Runs one side of the handshake on `spec.socket`; for connectTcpTransport and the server. */
export function startHandshake(spec: HandshakeSpec): void {
  new Handshake(spec);
}

/**
 * Connects to a TcpTransportServer and attaches the transport to `system`. Rejects with
 * INVALID_OPTION for a bad option (or a peer that already has a transport on either side),
 * UNAVAILABLE if the connection cannot be made in time, UNAUTHORIZED if the peer does not hold
 * the secret, is not `expectedPeer`, or the handshake fails or misses its deadline, and CLOSED if
 * either system is stopped.
 */
export function connectTcpTransport(
  system: ActorSystem,
  options: ConnectTcpTransportOptions,
): Promise<TcpTransport> {
  let settings: TcpSettings;
  let host: string;
  let port: number;
  let expectedPeer: string | undefined;
  try {
    settings = checkTcpSettings(options);
    host = checkHost(options.host);
    port = checkPort(options.port, 1);
    expectedPeer = checkExpectedPeer(options.expectedPeer);
  } catch (err) {
    return Promise.reject(asDinomoError(err));
  }
  return new Promise<TcpTransport>((resolve, reject) => {
    const socket = connect({ host, port });
    startHandshake({
      system,
      socket,
      role: 'connector',
      settings,
      remote: `${host}:${port}`,
      expectedPeer,
      done: (result) => (result instanceof TcpTransport ? resolve(result) : reject(result)),
    });
  });
}
