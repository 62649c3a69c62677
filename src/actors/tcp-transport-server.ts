import type { Server, Socket } from 'node:net';
import { DinomoError } from '../errors/index.js';
import { listenTcp } from '../util/listen.js';
import type { ActorSystem } from './system.js';
import {
  checkHost,
  checkPort,
  checkTcpSettings,
  type TcpSettings,
  type TcpTransportServerOptions,
} from './tcp-options.js';
import { startHandshake, TcpTransport, type HandshakeResult } from './tcp-transport.js';

/**
 * Accepts TCP actor transports for one actor system: every connection runs the handshake as the
 * acceptor, and each authenticated peer gets a TcpTransport attached to the system and handed to
 * `onPeer`. Handshakes in progress are bounded, so a flood of silent connections costs at most
 * `maxPendingHandshakes` sockets, each for at most the handshake deadline.
 */

/** Connections beyond this many unfinished handshakes are closed at once. */
export const maxPendingHandshakes = 64;

function logRefusal(error: DinomoError, remote: string): void {
  process.stderr.write(`dinomo actors: refused a connection from ${remote}: ${error.message}\n`);
}

export class TcpTransportServer {
  /** The interface listened on. */
  readonly host: string;
  /** The port listened on: the one chosen by the system if the options said 0. */
  readonly port: number;
  private readonly system: ActorSystem;
  private readonly server: Server;
  private readonly settings: TcpSettings;
  private readonly onPeer: (transport: TcpTransport) => void;
  private readonly onHandshakeError: (error: DinomoError, remote: string) => void;
  private readonly handshakes = new Set<Socket>();
  private readonly transports = new Set<TcpTransport>();
  private closing: Promise<void> | undefined;

  private constructor(
    system: ActorSystem,
    server: Server,
    host: string,
    settings: TcpSettings,
    options: TcpTransportServerOptions,
  ) {
    this.system = system;
    this.server = server;
    this.host = host;
    const bound = server.address();
    this.port = typeof bound === 'object' && bound !== null ? bound.port : options.port;
    this.settings = settings;
    this.onPeer = options.onPeer ?? (() => {});
    this.onHandshakeError = options.onHandshakeError ?? logRefusal;
    server.on('connection', (socket: Socket) => this.accept(socket));
    server.on('error', (err) => this.report(new DinomoError('INTERNAL', err.message), host));
  }

  /**
   * Listens on `host:port` (default host 127.0.0.1; port 0 picks a free one). Rejects with
   * INVALID_OPTION for a bad option or an address that cannot be listened on.
   */
  static listen(
    system: ActorSystem,
    options: TcpTransportServerOptions,
  ): Promise<TcpTransportServer> {
    let settings: TcpSettings;
    let host: string;
    let port: number;
    try {
      settings = checkTcpSettings(options);
      host = checkHost(options.host);
      port = checkPort(options.port, 0);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    return listenTcp(host, port).then(
      (server) => new TcpTransportServer(system, server, host, settings, options),
    );
  }

  /** Peers whose transports are open. */
  get peers(): string[] {
    return [...this.transports].map((t) => t.peer);
  }

  /**
   * Stops listening, drops handshakes in progress and closes the transports this server accepted
   * (asks waiting on them fail with CLOSED). Resolves once every connection is gone. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.handshakes) socket.destroy();
      for (const transport of this.transports) transport.close();
    });
    return this.closing;
  }

  private accept(socket: Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (this.closing || this.handshakes.size >= maxPendingHandshakes) {
      socket.destroy();
      const why = this.closing ? 'the server is closing' : 'too many handshakes in progress';
      this.report(new DinomoError('OVERLOADED', why), remote);
      return;
    }
    this.handshakes.add(socket);
    startHandshake({
      system: this.system,
      socket,
      role: 'acceptor',
      settings: this.settings,
      remote,
      done: (result) => this.finished(socket, remote, result),
    });
  }

  private finished(socket: Socket, remote: string, result: HandshakeResult): void {
    this.handshakes.delete(socket);
    if (!(result instanceof TcpTransport)) {
      // Handshakes dropped by close() are not refusals worth reporting.
      if (!this.closing) this.report(result, remote);
      return;
    }
    if (this.closing) {
      result.close();
      return;
    }
    const transport = result;
    this.transports.add(transport);
    void transport.closed.then(() => this.transports.delete(transport));
    try {
      this.onPeer(transport);
    } catch (err) {
      // A throw here would surface as an uncaught exception in a socket event.
      const message = err instanceof Error ? err.message : String(err);
      this.report(new DinomoError('INTERNAL', `onPeer threw: ${message}`), remote);
    }
  }

  private report(error: DinomoError, remote: string): void {
    try {
      this.onHandshakeError(error, remote);
    } catch (err) {
      // The hook must not throw; if it does, neither problem may vanish.
      logRefusal(error, remote);
      logRefusal(new DinomoError('INTERNAL', `onHandshakeError threw: ${String(err)}`), remote);
    }
  }
}
