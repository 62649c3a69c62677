import type { Server, Socket } from 'node:net';
import { encodeFrame, FrameReader, maxFrameBytes } from '../actors/index.js';
import { checkHost, checkPort } from '../actors/tcp-options.js';
import { DinomoError } from '../errors/index.js';
import type { Clock } from '../time/index.js';
import { listenTcp } from '../util/listen.js';
import { overloadedResponses, splitBatch, type ClientMux } from './client-mux.js';

/**
 * The data port of one KN thread: clients in other processes connect over TCP and send request
 * batches (src/kn/wire.ts), each as one frame (a 4-byte big-endian length, then the batch; at most
 * maxFrameBytes). Every batch goes through the ClientMux, which gives its requests ids that are
 * unique at the KN thread, and then to `deliver` (the thread's enqueue). The thread's output comes
 * back through `onResponses`, which the mux splits into one frame per connection.
 *
 *   const server = await KnDataServer.listen({ host, port: 0, clock, mux, deliver: (b) => thread.enqueue(b) });
 *   // in the thread's send callback: server.onResponses(responses)
 *
 * This port has no authentication and no encryption: it must be bound to a trusted network only,
 * like Redis without AUTH. (The actor control port is the one with the HMAC handshake.)
 *
 * The server protects itself, not the client: a frame that is oversized or not a well-formed
 * request batch closes its connection; a batch that would take the mux past its bound is answered
 * with OVERLOADED errors; connections beyond maxConnections are closed at once; and a client that
 * does not read its answers is disconnected once more than maxQueuedBytes wait in its socket.
 */

export const defaultMaxConnections = 256;
export const defaultMaxQueuedBytes = 16 * 1024 * 1024;

export interface KnDataServerOptions {
  /** The interface to listen on: a trusted network only (see above). */
  readonly host: string;
  /** 0 picks a free port; the server's `port` says which. */
  readonly port: number;
  /** Accepted for symmetry with the other servers; the data server sets no timers today. */
  readonly clock: Clock;
  /** Shared by every connection of this server; the server is its only user. */
  readonly mux: ClientMux;
  /**
   * Hands a rewritten request batch to the KN thread. The batch is the receiver's own (an
   * exact-size buffer), so it may be kept or transferred. Must not throw.
   */
  readonly deliver: (batch: Uint8Array) => void;
  /** Open connections at most; further ones are closed at once. Default 256. */
  readonly maxConnections?: number;
  /** Bytes waiting in one connection's socket at most before it is closed. Default 16 MiB. */
  readonly maxQueuedBytes?: number;
}

export interface KnDataServerStats {
  /** Connections open now. */
  connections: number;
  /** Connections closed at once because maxConnections were open or the server was closing. */
  refusedConnections: number;
  /** Connections closed for an oversized or malformed frame. */
  protocolErrors: number;
  /** Request batches answered with OVERLOADED because the mux was full. */
  overloaded: number;
  /** Connections closed because more than maxQueuedBytes waited in their socket. */
  slowClients: number;
}

/** One client connection; `id` is never reused, so a late answer cannot reach a newer client. */
interface DataConnection {
  readonly id: number;
  readonly socket: Socket;
  readonly reader: FrameReader;
  open: boolean;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new DinomoError(
      'INVALID_OPTION',
      `${name} must be a positive integer; got ${String(value)}`,
    );
  }
  return value;
}

/** An exact-size buffer of the receiver's own: frames are often views into a larger chunk. */
function owned(frame: Buffer): Uint8Array {
  if (frame.byteOffset === 0 && frame.byteLength === frame.buffer.byteLength) return frame;
  return new Uint8Array(frame);
}

interface Settings {
  readonly host: string;
  readonly mux: ClientMux;
  readonly deliver: (batch: Uint8Array) => void;
  readonly maxConnections: number;
  readonly maxQueuedBytes: number;
}

function checkOptions(options: KnDataServerOptions): Settings & { port: number } {
  return {
    host: checkHost(options.host),
    port: checkPort(options.port, 0),
    mux: options.mux,
    deliver: options.deliver,
    maxConnections: positiveInteger(
      'maxConnections',
      options.maxConnections,
      defaultMaxConnections,
    ),
    maxQueuedBytes: positiveInteger(
      'maxQueuedBytes',
      options.maxQueuedBytes,
      defaultMaxQueuedBytes,
    ),
  };
}

/** See the top of this file. */
export class KnDataServer {
  /** The interface listened on. */
  readonly host: string;
  /** The port listened on: the one chosen by the system if the options said 0. */
  readonly port: number;
  private readonly server: Server;
  private readonly settings: Settings;
  private readonly connections = new Map<number, DataConnection>();
  private readonly counters = {
    refusedConnections: 0,
    protocolErrors: 0,
    overloaded: 0,
    slowClients: 0,
  };
  private nextConnection = 1;
  private closing: Promise<void> | undefined;

  private constructor(server: Server, settings: Settings, port: number) {
    this.server = server;
    this.settings = settings;
    this.host = settings.host;
    const bound = server.address();
    this.port = typeof bound === 'object' && bound !== null ? bound.port : port;
    server.on('connection', (socket: Socket) => this.accept(socket));
    // Errors after listen (such as a failed accept under fd exhaustion) cost only that connection;
    // a listener is needed so that they do not become uncaught exceptions.
    server.on('error', () => {});
  }

  /**
   * Listens on `host:port` (port 0 picks a free one). Rejects with INVALID_OPTION for a bad option
   * or an address that cannot be listened on.
   */
  static listen(options: KnDataServerOptions): Promise<KnDataServer> {
    let settings: Settings & { port: number };
    try {
      settings = checkOptions(options);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    const { host, port } = settings;
    return listenTcp(host, port).then((server) => new KnDataServer(server, settings, port));
  }

  /** `host:port`, with an IPv6 host in brackets. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
  }

  get stats(): KnDataServerStats {
    return { connections: this.connections.size, ...this.counters };
  }

  /** Takes one response batch of the KN thread and sends each connection its answers. */
  onResponses(batch: Uint8Array): void {
    this.settings.mux.route(batch, (id, responses) => {
      const connection = this.connections.get(id);
      if (connection !== undefined) this.send(connection, responses);
    });
  }

  /**
   * Stops listening and closes every connection (their requests in flight are forgotten, so their
   * answers are dropped). Resolves once the listening socket is closed. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const connection of [...this.connections.values()]) this.drop(connection);
    });
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined || this.connections.size >= this.settings.maxConnections) {
      this.counters.refusedConnections++;
      socket.destroy();
      return;
    }
    const connection: DataConnection = {
      id: this.nextConnection++,
      socket,
      reader: new FrameReader(maxFrameBytes),
      open: true,
    };
    this.connections.set(connection.id, connection);
    // Batches are already one per tick; Nagle would only add latency.
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(connection, chunk));
    // A socket error (reset, broken pipe) is always followed by 'close', which does the cleanup.
    socket.on('error', () => {});
    socket.on('close', () => this.forget(connection));
  }

  private onData(connection: DataConnection, chunk: Buffer): void {
    if (!connection.open) return;
    connection.reader.push(chunk);
    while (connection.open) {
      let frame: Buffer | undefined;
      try {
        frame = connection.reader.next();
      } catch {
        // An oversized length: the stream is out of step and nothing after it can be trusted.
        this.protocolError(connection);
        return;
      }
      if (frame === undefined) return;
      this.onBatch(connection, owned(frame));
    }
  }

  private onBatch(connection: DataConnection, batch: Uint8Array): void {
    let admitted: Uint8Array | null;
    try {
      admitted = this.settings.mux.admit(connection.id, batch);
    } catch {
      // Only a client that does not follow the protocol sends a malformed batch.
      this.protocolError(connection);
      return;
    }
    if (admitted === null) {
      this.counters.overloaded++;
      const why = `KN thread data port ${this.address} has ${this.settings.mux.inflight} requests in flight`;
      this.send(connection, overloadedResponses(batch, why));
    } else if (admitted.length > 4) {
      this.settings.deliver(admitted);
    }
  }

  private send(connection: DataConnection, responses: Uint8Array): void {
    if (!connection.open) return;
    const { socket } = connection;
    // One response is at most a value plus its header, far below the frame limit, but a batch of
    // many large values may not be: it is sent as several frames of whole responses.
    for (const part of splitBatch(responses, 'response', maxFrameBytes)) {
      socket.write(encodeFrame(part));
    }
    if (socket.writableLength > this.settings.maxQueuedBytes) {
      // A client that does not read must not make this thread buffer without bound.
      this.counters.slowClients++;
      this.drop(connection);
    }
  }

  private protocolError(connection: DataConnection): void {
    this.counters.protocolErrors++;
    this.drop(connection);
  }

  private drop(connection: DataConnection): void {
    connection.socket.destroy();
    this.forget(connection);
  }

  private forget(connection: DataConnection): void {
    if (!connection.open) return;
    connection.open = false;
    this.connections.delete(connection.id);
    this.settings.mux.forget(connection.id);
  }
}
