import { DinomoError } from '../errors/index.js';
import { connectRemote, type ClusterClient } from './remote-client.js';

export interface ConnectOptions {
  /** The cluster secret; default the DINOMO_SECRET environment variable. */
  secret?: string | Uint8Array;
  /** How long a request may wait for its answer (and refused requests are retried); default 10 s. */
  requestTimeoutMs?: number;
}

/**
 * Connects to a cluster in other processes. `dinomo://host:port` is the monitor of a multi-process
 * cluster (`dinomo cluster up` prints it): the client fetches the routing table there and talks to
 * each KN thread on its data port. `redis://` (the RESP endpoint of a KN thread) comes with the
 * Redis-protocol work and is refused with NOT_SUPPORTED until then.
 */
export function connect(url: string, options: ConnectOptions = {}): Promise<ClusterClient> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return refuse(
      'INVALID_OPTION',
      `connect() needs a URL like dinomo://127.0.0.1:7400, got "${url}"`,
    );
  }
  if (parsed.protocol === 'redis:') {
    return refuse(
      'NOT_SUPPORTED',
      'RESP clients are not built yet; connect to the monitor with dinomo://host:port',
    );
  }
  if (parsed.protocol !== 'dinomo:') {
    return refuse('INVALID_OPTION', `connect() supports dinomo:// URLs, got "${parsed.protocol}"`);
  }
  const port = Number(parsed.port);
  if (parsed.hostname === '' || !Number.isInteger(port) || port < 1) {
    return refuse(
      'INVALID_OPTION',
      `connect() needs a host and a port, as in dinomo://127.0.0.1:7400`,
    );
  }
  const secret = options.secret ?? process.env.DINOMO_SECRET;
  if (secret === undefined) {
    return refuse(
      'INVALID_OPTION',
      'connect() needs the cluster secret: pass { secret } or set DINOMO_SECRET',
    );
  }
  return connectRemote({
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    secret,
    ...(options.requestTimeoutMs === undefined
      ? {}
      : { requestTimeoutMs: options.requestTimeoutMs }),
  });
}

function refuse(code: 'INVALID_OPTION' | 'NOT_SUPPORTED', message: string): Promise<never> {
  return Promise.reject(new DinomoError(code, message));
}
