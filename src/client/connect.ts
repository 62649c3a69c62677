import { DinomoError } from '../errors/index.js';
import type { KvClient } from './embedded-client.js';

/**
 * Connects to a remote dinomo cluster (`redis://host:port`, the RESP endpoint of any KN thread). The
 * RESP server and the remote client come with the Redis-protocol work; until then this validates the
 * URL and rejects with NOT_SUPPORTED, so callers can already code against the final API.
 */
export function connect(url: string): Promise<KvClient> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return Promise.reject(
      new DinomoError(
        'INVALID_OPTION',
        `connect() needs a URL like redis://127.0.0.1:6379, got "${url}"`,
      ),
    );
  }
  if (parsed.protocol !== 'redis:') {
    return Promise.reject(
      new DinomoError(
        'INVALID_OPTION',
        `connect() supports redis:// URLs, got "${parsed.protocol}"`,
      ),
    );
  }
  return Promise.reject(
    new DinomoError(
      'NOT_SUPPORTED',
      'remote clients (RESP) are not built yet; use Cluster.start().client() in process',
    ),
  );
}
