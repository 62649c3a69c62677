import { DinomoError } from '../errors/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { isSystemAddress } from './address.js';
import { clusterSecret } from './tcp-handshake.js';
import type { TcpTransport } from './tcp-transport.js';

/**
 * The options of the TCP actor transport and their checks. Both ends take the cluster secret, a
 * clock for the handshake deadline and the deadline itself; everything is checked here, at the
 * edge, so that a bad option fails at once with a message that says what to do.
 */

export const defaultTcpHost = '127.0.0.1';
export const defaultHandshakeTimeoutMs = 5_000;
/** Node timers overflow beyond 2^31 - 1 ms and would fire at once. */
const timeoutMaxMs = 2_147_483_647;

/** What both ends of a TCP transport need. */
export interface TcpTransportOptions {
  /**
   * The cluster secret, the same in every process: a string or bytes, at least 16 bytes. It never
   * crosses the wire; each side proves it holds it.
   */
  readonly secret: string | Uint8Array;
  /** Runs the handshake deadline; defaults to the real clock. */
  readonly clock?: Clock;
  /** How long connecting and the handshake may take, in milliseconds; default 5000. */
  readonly handshakeTimeoutMs?: number;
}

export interface ConnectTcpTransportOptions extends TcpTransportOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly port: number;
  /** If given, the peer must be the system at this address (`node/process/thread`). */
  readonly expectedPeer?: string;
}

export interface TcpTransportServerOptions extends TcpTransportOptions {
  /** The interface to listen on; default 127.0.0.1 (loopback only). */
  readonly host?: string;
  /** 0 picks a free port; the server's `port` says which. */
  readonly port: number;
  /** Called for each authenticated peer, once its transport is attached to the system. */
  readonly onPeer?: (transport: TcpTransport) => void;
  /**
   * Called when a connection is refused: failed handshake, deadline, a peer that already has a
   * transport. Defaults to a line on stderr, since refusals may be attacks or misconfiguration.
   */
  readonly onHandshakeError?: (error: DinomoError, remote: string) => void;
}

/** The checked form of TcpTransportOptions. */
export interface TcpSettings {
  readonly secret: Buffer;
  readonly clock: Clock;
  readonly handshakeTimeoutMs: number;
}

export function checkTcpSettings(options: TcpTransportOptions): TcpSettings {
  const secret = clusterSecret(options.secret);
  const timeout = options.handshakeTimeoutMs ?? defaultHandshakeTimeoutMs;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > timeoutMaxMs) {
    throw new DinomoError(
      'INVALID_OPTION',
      `handshakeTimeoutMs must be a number of milliseconds, > 0 and <= ${timeoutMaxMs}; got ${String(timeout)}`,
    );
  }
  return { secret, clock: options.clock ?? systemClock, handshakeTimeoutMs: timeout };
}

export function checkHost(host: string | undefined): string {
  if (host === undefined) return defaultTcpHost;
  if (typeof host !== 'string' || host.length === 0) {
    throw new DinomoError(
      'INVALID_OPTION',
      `host must be a host name or IP address such as '${defaultTcpHost}'; got ${String(host)}`,
    );
  }
  return host;
}

/** `min` is 0 for listening (any free port) and 1 for connecting. */
export function checkPort(port: number, min: 0 | 1): number {
  if (!Number.isInteger(port) || port < min || port > 65_535) {
    throw new DinomoError(
      'INVALID_OPTION',
      `port must be an integer from ${min} to 65535; got ${String(port)}`,
    );
  }
  return port;
}

export function checkExpectedPeer(peer: string | undefined): string | undefined {
  if (peer !== undefined && (typeof peer !== 'string' || !isSystemAddress(peer))) {
    throw new DinomoError(
      'INVALID_OPTION',
      `expectedPeer must be a system address node/process/thread; got '${String(peer)}'`,
    );
  }
  return peer;
}
