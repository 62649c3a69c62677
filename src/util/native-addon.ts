import { createRequire } from 'node:module';
import { DinomoError } from '../errors/index.js';

/** The pmem part of the addon (native/src/pmem.cc). */
export interface PmemAddon {
  /** Maps `path` (created and sized when `create` and missing) as a SharedArrayBuffer of `bytes`. */
  mapFile(path: string, bytes: number, create: boolean): SharedArrayBuffer;
  /** Writes the pages covering `[offset, offset + length)` of a mapped region back to its file. */
  flush(region: SharedArrayBuffer, offset: number, length: number): void;
}

const require = createRequire(import.meta.url);
let pmem: PmemAddon | null = null;
let pmemError: string | null = null;

/**
 * The pmem addon, loaded once per thread. It lives in native/build/Release, two folders above this
 * module both in src/util and in dist/util. Throws NOT_SUPPORTED, saying how to build it, when it
 * is missing.
 */
export function pmemAddon(): PmemAddon {
  if (pmem !== null) return pmem;
  if (pmemError === null) {
    try {
      pmem = require('../../native/build/Release/dinomo_pmem.node') as PmemAddon;
      return pmem;
    } catch (err) {
      pmemError = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    }
  }
  throw new DinomoError(
    'NOT_SUPPORTED',
    'a file-backed region (dataDir) needs the native addon, which is not built: install g++, ' +
      `make and python3, then run \`npm run build:native\` (${pmemError})`,
  );
}

/** True when the pmem addon can be loaded (for tests that need it and say why they skip). */
export function pmemAvailable(): boolean {
  try {
    pmemAddon();
    return true;
  } catch {
    return false;
  }
}
