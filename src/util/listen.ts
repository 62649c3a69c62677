import { createServer, type Server } from 'node:net';
import { DinomoError } from '../errors/index.js';

/**
 * A TCP server listening on `host:port` (0: a free port). Rejects with INVALID_OPTION, saying what
 * to change, when it cannot listen there (the port is taken, the host is not an interface here).
 */
export function listenTcp(host: string, port: number): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const server = createServer();
    const refused = (err: Error): void => {
      reject(
        new DinomoError(
          'INVALID_OPTION',
          `cannot listen on ${host}:${port}: ${err.message}; choose a free port or another host`,
        ),
      );
    };
    server.once('error', refused);
    server.listen({ host, port }, () => {
      server.off('error', refused);
      resolve(server);
    });
  });
}
