import { DinomoError } from '../errors/index.js';
import { fillPolicyOptions, type PolicyOptions } from '../monitor/policy.js';
import { blockBytesLimit, blockBytesMin, regionBytesMax } from './limits.js';

const MiB = 1024 * 1024;

/** The engine modes a cluster can run (docs/baselines.md). */
export type ClusterMode = 'dinomo' | 'clover' | 'dinomo-n';

/** Every mode, in the order messages list them. */
export const clusterModes: readonly ClusterMode[] = ['dinomo', 'clover', 'dinomo-n'];

/** Options of `Cluster.start`. Every field is optional; `fillOptions` supplies the defaults. */
export interface ClusterOptions {
  /** KN count (embedded: groups of worker threads). Default 1. */
  kns?: number;
  /** KN threads per KN. Default 2. */
  threadsPerKn?: number;
  /** Size of the DPM region in bytes. Default 256 MiB. */
  regionBytes?: number;
  /** DAC budget per KN thread in bytes (exact). Default 8 MiB. */
  cacheBytesPerThread?: number;
  /** Log block size in bytes: a power of two, at least 2 MiB. Default 8 MiB. */
  blockBytes?: number;
  /** Group commit window in microseconds. Default 200. */
  groupCommitUs?: number;
  /** A batch is committed early once it holds this many bytes. Default 1 MiB. */
  groupCommitBytes?: number;
  /** Sealed blocks a KN thread keeps a local copy of until the DPM merged them (back-pressure). Default 1. */
  recentBlocks?: number;
  /** DPM merge worker threads. Default 1. */
  mergeThreads?: number;
  /** A request without an answer after this long fails with TIMEOUT. Default 10000. */
  requestTimeoutMs?: number;
  /** Requests in flight per KN thread before new ones fail with OVERLOADED. Default 65536. */
  inflightMaxPerThread?: number;
  /**
   * Most KNs the cluster can have at once, counting KNs added at run time (`addKn`) and KNs whose
   * ranks a failure or removal retired: the region's chain table is formatted for
   * `maxKns × threadsPerKn` threads. Default: `kns + 4`.
   */
  maxKns?: number;
  /** KN threads send a heartbeat to the M-node this often. Default 100. */
  heartbeatMs?: number;
  /**
   * A granted ownership lease lasts this long; a thread without one serves nothing. Default 2000:
   * on a machine with more threads than cores a heartbeat can wait hundreds of milliseconds, and a
   * lapsed lease turns acknowledgements into `UNAVAILABLE`.
   */
  leaseMs?: number;
  /** A KN thread without a heartbeat for this long is declared failed and failed over. Default 2000. */
  suspectAfterMs?: number;
  /**
   * Let the M-node's scaling policy add and remove KNs by itself. Off by default: the policy still
   * runs and `cluster.decisions()` shows what it would do, with reasons.
   */
  autoscale?: boolean;
  /** The scaling policy's thresholds and periods (src/monitor/policy.ts); defaults as the original. */
  policy?: PolicyOptions;
  /**
   * Directory of a file-backed region (needs the native addon): created and formatted when empty,
   * reopened and recovered on the next start, so acknowledged writes survive the process.
   */
  dataDir?: string;
  /**
   * When an acknowledged write is durable. 'async' (default): in the region below its commit offset,
   * so with a dataDir it survives the death of any process, and reaches the file when the OS writes
   * it back. 'sync': also flushed to the file (msync) before the acknowledgement, so it survives an
   * OS crash or power loss too; the DPM then flushes its own updates where recovery needs them
   * (docs/architecture.md, "Durability"). 'sync' needs a dataDir.
   */
  durability?: 'async' | 'sync';
  /**
   * Engine mode (docs/baselines.md): 'dinomo' (default); the baselines 'clover' (shared
   * everything: any KN thread serves any key, caches only shortcuts, links versions by CAS) and
   * 'dinomo-n' (shared nothing: a private index partition per KN thread). The embedded cluster
   * runs all three; the multi-process cluster only 'dinomo'.
   */
  mode?: ClusterMode;
}

export type FilledOptions = Required<Omit<ClusterOptions, 'dataDir'>>;
export type { PolicyOptions };

/** `maxKns` when it is not given: room for a few KNs added at run time. */
export const maxKnsHeadroom = 4;

export const defaultOptions: FilledOptions = {
  kns: 1,
  threadsPerKn: 2,
  regionBytes: 256 * MiB,
  cacheBytesPerThread: 8 * MiB,
  blockBytes: 8 * MiB,
  groupCommitUs: 200,
  groupCommitBytes: 1 * MiB,
  recentBlocks: 1,
  mergeThreads: 1,
  requestTimeoutMs: 10_000,
  inflightMaxPerThread: 65_536,
  maxKns: 0,
  heartbeatMs: 100,
  leaseMs: 2000,
  suspectAfterMs: 2000,
  autoscale: false,
  policy: {},
  durability: 'async',
  mode: 'dinomo',
};

/** The largest KN thread count a region's chain table is formatted for. */
export const rankCountMax = 1024;

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DinomoError(
      'INVALID_OPTION',
      `options.${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

/**
 * `kns` + 4, but no more KNs than the region can give two log blocks per thread (the default index
 * takes an eighth of the region; a megabyte covers the metadata), and never fewer than `kns`.
 */
function defaultMaxKns(o: FilledOptions): number {
  if (![o.kns, o.threadsPerKn, o.regionBytes, o.blockBytes].every(Number.isInteger)) return o.kns;
  if (o.threadsPerKn < 1 || o.blockBytes < 1) return o.kns;
  const blocks = Math.floor((o.regionBytes - o.regionBytes / 8 - MiB) / o.blockBytes);
  const fit = Math.floor(blocks / (2 * o.threadsPerKn));
  return Math.max(o.kns, Math.min(o.kns + maxKnsHeadroom, fit));
}

/** Validates user options and fills defaults. Bad input throws INVALID_OPTION and starts nothing. */
export function fillOptions(options: ClusterOptions = {}): FilledOptions {
  if (typeof options !== 'object' || options === null) {
    throw new DinomoError('INVALID_OPTION', 'options must be an object');
  }
  const known = new Set([...Object.keys(defaultOptions), 'dataDir']);
  for (const name of Object.keys(options)) {
    if (!known.has(name)) throw new DinomoError('INVALID_OPTION', `unknown option "${name}"`);
  }
  if (
    options.dataDir !== undefined &&
    (typeof options.dataDir !== 'string' || options.dataDir.length === 0)
  ) {
    throw new DinomoError('INVALID_OPTION', 'options.dataDir must be a non-empty directory path');
  }
  const o = { ...defaultOptions, ...options } as FilledOptions;
  if (o.durability !== 'async' && o.durability !== 'sync') {
    throw new DinomoError(
      'INVALID_OPTION',
      `options.durability must be 'async' or 'sync', got ${JSON.stringify(o.durability)}`,
    );
  }
  if (o.durability === 'sync' && options.dataDir === undefined) {
    throw new DinomoError(
      'INVALID_OPTION',
      "options.durability 'sync' needs dataDir: a region in plain memory has nothing to flush to; " +
        "give a dataDir or use durability 'async'",
    );
  }
  if (options.maxKns === undefined) o.maxKns = defaultMaxKns(o);
  if (!clusterModes.includes(o.mode)) {
    throw new DinomoError(
      'INVALID_OPTION',
      `options.mode must be one of ${clusterModes.map((m) => `'${m}'`).join(', ')}, ` +
        `got ${JSON.stringify(o.mode)}`,
    );
  }
  integerIn('kns', o.kns, 1, 64);
  integerIn('threadsPerKn', o.threadsPerKn, 1, 64);
  integerIn('kns * threadsPerKn', o.kns * o.threadsPerKn, 1, rankCountMax);
  integerIn('maxKns', o.maxKns, o.kns, Math.floor(rankCountMax / o.threadsPerKn));
  integerIn('heartbeatMs', o.heartbeatMs, 1, 60_000);
  // A lease must outlive at least two heartbeat periods, or it lapses between renewals.
  integerIn('leaseMs', o.leaseMs, 2 * o.heartbeatMs, 600_000);
  integerIn('suspectAfterMs', o.suspectAfterMs, 2 * o.heartbeatMs, 600_000);
  if (typeof o.autoscale !== 'boolean') {
    throw new DinomoError('INVALID_OPTION', `options.autoscale must be true or false`);
  }
  // Validates thresholds and periods (INVALID_OPTION naming the field) before anything starts.
  fillPolicyOptions(o.policy);
  integerIn('blockBytes', o.blockBytes, blockBytesMin, blockBytesLimit);
  if ((o.blockBytes & (o.blockBytes - 1)) !== 0) {
    throw new DinomoError(
      'INVALID_OPTION',
      `options.blockBytes must be a power of two, got ${o.blockBytes}`,
    );
  }
  integerIn('regionBytes', o.regionBytes, 16 * MiB, regionBytesMax);
  integerIn('cacheBytesPerThread', o.cacheBytesPerThread, 0, 2 ** 34);
  integerIn('groupCommitUs', o.groupCommitUs, 0, 1_000_000);
  integerIn('groupCommitBytes', o.groupCommitBytes, 4096, o.blockBytes);
  integerIn('recentBlocks', o.recentBlocks, 1, 64);
  integerIn('mergeThreads', o.mergeThreads, 1, 16);
  integerIn('requestTimeoutMs', o.requestTimeoutMs, 1, 3_600_000);
  integerIn('inflightMaxPerThread', o.inflightMaxPerThread, 1, 10_000_000);
  return o;
}
