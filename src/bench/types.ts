import type { ClusterMode } from '../config/options.js';
/**
 * The part of the public API that the benchmark drives, written as structural interfaces. The real
 * `Cluster` from `src/index.ts` satisfies them; so does the in-memory fake the tests use. Only the
 * fields the benchmark reads are listed, so the cluster's stats may grow without breaking the bench.
 */

export type BenchKey = string | Uint8Array;
export type BenchValue = string | Uint8Array;

/** The data operations of a client (`cluster.client()` or `connect(url)`). */
export interface BenchClient {
  put(key: BenchKey, value: BenchValue): Promise<void>;
  get(key: BenchKey): Promise<Uint8Array | null>;
  /** True if the key held a value. */
  delete(key: BenchKey): Promise<boolean>;
}

/** The counters of `cluster.stats()` that a report uses. All are cumulative since the cluster started. */
export interface BenchStats {
  ops: { gets: number; puts: number; deletes: number; total: number };
  /** Fabric round trips between KNs and the DPM. */
  rts: { total: number; perOp: number };
  /** How gets were served: from a cached value, through a cached shortcut, from a KN's log, by a miss. */
  hits: { value: number; shortcut: number; log: number; miss: number; notFound: number };
  /** Average round trips per miss, over all misses since start. */
  missCostRts: number;
  dpm: { bytesUsed: number };
  cache: { bytesUsed: number };
}

/** Something a workload runs against: it hands out clients and reports counters. */
export interface BenchTarget {
  client(): BenchClient;
  /** Synchronous on the embedded cluster; a promise is accepted for remote targets. */
  stats(): BenchStats | Promise<BenchStats>;
}

/**
 * The engine a cluster runs: DINOMO itself, or one of the paper's baselines in the same engine
 * (docs/baselines.md): 'clover' (shared everything) and 'dinomo-n' (shared nothing, a private index
 * partition per KN thread). The real `ClusterOptions.mode`.
 */
export type BenchMode = ClusterMode;

/** The cluster options the demo and the bench set; the real `ClusterOptions` has these and more. */
export interface BenchClusterOptions {
  /** Default 'dinomo'. A cluster that does not run a mode rejects it (NOT_SUPPORTED or INVALID_OPTION). */
  mode?: BenchMode;
  kns?: number;
  threadsPerKn?: number;
  regionBytes?: number;
  cacheBytesPerThread?: number;
}

export interface BenchCluster extends BenchTarget {
  stop(): Promise<void>;
}

/** The static side of `Cluster`: `Cluster.start(options)`. */
export interface BenchClusterClass {
  start(options: BenchClusterOptions): Promise<BenchCluster>;
}

/** What adding, removing or failing one KN did. */
export interface KnChangeReport {
  knId: number;
  /** Routing slots that changed owner. */
  slotsMoved: number;
  /** From the request to the new slot map being in effect. */
  durationMs: number;
  /** The longest time one moved slot took no writes (the embedded cluster reports it). */
  maxPauseMs?: number;
  /** The longest time one moved slot served no reads (the embedded cluster reports it). */
  maxReadPauseMs?: number;
  /** failKn only: from the failure to the M-node suspecting it. */
  detectMs?: number;
  /** failKn only: from the failure to its slots being served again. */
  failoverMs?: number;
}

/**
 * A cluster whose KNs can be added, removed and failed while it serves: what `dinomo trigger` drives.
 * KN ids grow: a KN added later has a larger id than every KN before it.
 */
export interface ElasticCluster extends BenchCluster {
  addKn(): Promise<KnChangeReport>;
  /** Removes a live KN gracefully: its slots move to the others first. */
  removeKn(knId: number): Promise<KnChangeReport>;
  /** Fails a live KN abruptly, as a crash would; the others take over its slots. */
  failKn(knId: number): Promise<KnChangeReport>;
  /** The ids of the live KNs, in any order. */
  knIds(): number[];
}

/** The static side of an elastic `Cluster`. */
export interface ElasticClusterClass {
  start(options: BenchClusterOptions): Promise<ElasticCluster>;
}
