import { createRequire } from 'node:module';
import { DinomoError } from '../errors/index.js';

/** The pmem part of the addon (native/src/pmem.cc). */
export interface PmemAddon {
  /** Maps `path` (created and sized when `create` and missing) as a SharedArrayBuffer of `bytes`. */
  mapFile(path: string, bytes: number, create: boolean): SharedArrayBuffer;
  /** Writes the pages covering `[offset, offset + length)` of a mapped region back to its file. */
  flush(region: SharedArrayBuffer, offset: number, length: number): void;
}

/** What a libfabric endpoint says about itself (native/src/fabric.cc, describe()). */
export interface NativeEndpointInfo {
  /** The endpoint's address, opaque bytes to hand to a peer's connect(). */
  name: Uint8Array;
  provider: string;
  mrMode: number;
  atomics: boolean;
}

/** The DPM side of the fabric addon: the region's registrations and the progress thread. */
export interface NativeFabricServer {
  describe(): NativeEndpointInfo & { base: bigint };
  grant(requestedKey: bigint): bigint;
  revoke(key: bigint): boolean;
  close(): void;
}

/** The KN side: one endpoint, synchronous one-sided operations. Errors carry `code` FABRIC_*. */
export interface NativeFabricEndpoint {
  describe(): NativeEndpointInfo & { atomicWords: boolean };
  connect(name: Uint8Array, key: bigint, base: bigint, regionBytes: number): void;
  reset(): void;
  close(): void;
  read(offset: number, length: number, dst: Uint8Array, dstOffset: number): void;
  write(offset: number, src: Uint8Array, srcOffset: number, length: number): void;
  read64(offset: number): bigint;
  write64(offset: number, value: bigint): void;
  cas64(offset: number, expected: bigint, desired: bigint): bigint;
  faa64(offset: number, delta: bigint): bigint;
  /** Runs `count` operations in a C loop and returns the nanoseconds they took. */
  bench(
    op: 'read' | 'write' | 'cas' | 'faa',
    offset: number,
    length: number,
    count: number,
  ): number;
}

/** The fabric part of the addon (native/src/fabric.cc). */
export interface FabricAddon {
  FabricServer: new (
    provider: 'shm' | 'tcp',
    region: SharedArrayBuffer,
    host: string,
    yieldProgress: boolean,
  ) => NativeFabricServer;
  FabricEndpoint: new (
    provider: 'shm' | 'tcp',
    host: string,
    bounceBytes: number,
    timeoutMs: number,
  ) => NativeFabricEndpoint;
  /**
   * Unlinks the shm segments of dinomo processes that died without closing their endpoints
   * (native/src/shm-names.h); returns how many. Opening an shm endpoint does this first.
   */
  sweepShmNames: () => number;
}

const require = createRequire(import.meta.url);

/** Loads one part of the addon once per thread, remembering why it could not be loaded. */
function addonPart<T>(file: string, advice: string): () => T {
  let loaded: T | null = null;
  let failure: string | null = null;
  return () => {
    if (loaded !== null) return loaded;
    if (failure === null) {
      try {
        // The addon lives in native/build/Release, two folders above this module in src/util and
        // in dist/util alike.
        loaded = require(`../../native/build/Release/${file}`) as T;
        return loaded;
      } catch (err) {
        failure = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
      }
    }
    throw new DinomoError('NOT_SUPPORTED', `${advice} (${failure})`);
  };
}

/** The pmem addon; throws NOT_SUPPORTED, saying how to build it, when it is missing. */
export const pmemAddon = addonPart<PmemAddon>(
  'dinomo_pmem.node',
  'a file-backed region (dataDir) needs the native addon, which is not built: install g++, ' +
    'make and python3, then run `npm run build:native`',
);

/** The fabric addon; throws NOT_SUPPORTED, naming the package and the rebuild, when it is missing. */
export const fabricAddon = addonPart<FabricAddon>(
  'dinomo_fabric.node',
  'the native fabric (libfabric) is not built: run `apt-get install -y libfabric-dev` ' +
    '(and g++, make, python3), then `npm run build:native`',
);

function loads(part: () => unknown): boolean {
  try {
    part();
    return true;
  } catch {
    return false;
  }
}

/** True when the pmem addon can be loaded (for tests that need it and say why they skip). */
export function pmemAvailable(): boolean {
  return loads(pmemAddon);
}

/** True when the fabric addon can be loaded (for tests that need it and say why they skip). */
export function fabricAvailable(): boolean {
  return loads(fabricAddon);
}
