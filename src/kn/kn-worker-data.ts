import type { ClusterMode } from '../config/options.js';

/**
 * How a KN thread runs, the same for every thread of a cluster: the embedded cluster takes it from
 * its options, and the monitor hands it to every KN process that joins.
 */
export interface KnThreadSettings {
  /**
   * Engine mode (docs/baselines.md). 'clover' makes the worker give the thread a chain walker and a
   * shortcuts-only DAC; 'dinomo-n' only reaches KnThread, which keeps a private index partition.
   */
  mode: ClusterMode;
  cacheBytes: number;
  blockBytes: number;
  recentBlocks: number;
  groupCommitUs: number;
  groupCommitBytes: number;
  inflightMax: number;
  controlTimeoutMs: number;
  /** How often the thread renews its ownership lease with the M-node. */
  heartbeatMs: number;
  /**
   * 'sync': the region is file-backed and every persist flushes what the thread wrote since the
   * last one to the file (msync) before the batch is acknowledged. 'async': persist only counts.
   */
  durability: 'async' | 'sync';
}

/** What the parent passes to a KN worker thread of an embedded cluster. */
export interface KnWorkerData extends KnThreadSettings {
  region: SharedArrayBuffer;
  rank: number;
  knId: number;
  statsBuffer: SharedArrayBuffer;
}
