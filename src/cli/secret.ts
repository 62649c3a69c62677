import { readFileSync } from 'node:fs';
import { FlagError } from './flags.js';

/** The cluster secret from a file or DINOMO_SECRET; at least 16 bytes (the transport checks it too). */
export function readSecret(file: string | undefined): string {
  let secret: string | undefined;
  if (file !== undefined) {
    try {
      secret = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new FlagError('--secret-file', `cannot be read: ${String(err)}`);
    }
  } else {
    secret = process.env.DINOMO_SECRET;
  }
  if (secret === undefined || Buffer.byteLength(secret) < 16) {
    throw new FlagError(
      '--secret-file',
      'or DINOMO_SECRET must give a cluster secret of at least 16 bytes, the same in every process',
    );
  }
  return secret;
}
