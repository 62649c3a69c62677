import type { MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../errors/index.js';
import type { ManagerStats, PartitionScanPage } from './dpm-manager-core.js';

/**
 * Messages of the DPM manager worker. KN threads talk to it over a MessagePort each (handed over by
 * the parent with `attach`); the parent talks to it over the worker's own port. Errors cross as
 * `{ code, message }` data (see toWireError), never as Error objects.
 */

/**
 * KN thread -> manager, on an attached port. `reopen` seals every block of the chain and allocates a
 * fresh tail: a KN thread sends it when it starts and after losing its fabric connection, having
 * abandoned its blocks. With `incarnation`, both are refused (FENCED) unless the rank's fence word
 * still allows that incarnation: a fenced thread must not touch the chain its successor writes.
 */
export type KnToDpmMessage =
  | { type: 'alloc'; id: number; rank: number; incarnation?: number }
  | { type: 'reopen'; id: number; rank: number; incarnation?: number }
  | { type: 'wait-merged'; id: number; rank: number; lsn: number }
  /** Clover mode: index a committed linked entry as its key's first version (docs/baselines.md). */
  | {
      type: 'create-linked';
      id: number;
      rank: number;
      entryOffset: number;
      incarnation?: number;
    }
  /**
   * DINOMO-N mode: one page of the keys in `slots` stored under any partition tag but `rank`'s,
   * from bucket `fromBucket` of index table `tableVersion` on (docs/baselines.md, "DINOMO-N").
   */
  | {
      type: 'scan-partitions';
      id: number;
      rank: number;
      slots: number[];
      tableVersion: number;
      fromBucket: number;
      keysMax: number;
      incarnation?: number;
    }
  /**
   * From the M-node, not a KN thread: fence `rank`, cut torn tails off its chain, seal it, and answer
   * once it is merged through its last committed entry (DESIGN.md section 8, "KN failure").
   */
  | { type: 'failover'; id: number; rank: number; incarnation: number };

/** Manager -> KN thread. `generation` and `blockSeq` save the KN a read of the new block's header. */
export type DpmToKnMessage =
  | { type: 'alloc-ok'; id: number; blockOffset: number; generation: number; blockSeq: number }
  | { type: 'merged'; id: number; mergedLsn: number }
  | { type: 'failed-over'; id: number; mergedLsn: number; incarnation: number }
  /** The key's indexed first version: the entry asked about, or the one created before it. */
  | { type: 'created'; id: number; entryOffset: number }
  | ({ type: 'scanned'; id: number } & PartitionScanPage)
  | { type: 'error'; id: number; code: ErrorCode; message: string };

/** Parent -> manager, on the worker port. */
export type ParentToDpmMessage =
  | { type: 'attach'; port: MessagePort }
  | { type: 'stats'; id: number }
  | { type: 'stop'; id: number };

/** Manager -> parent. `ready` is sent once the region is open and the merge pool exists. */
export type DpmToParentMessage =
  | { type: 'ready' }
  | { type: 'stats-ok'; id: number; stats: ManagerStats }
  | { type: 'stopped'; id: number }
  | { type: 'error'; id: number; code: ErrorCode; message: string };

export interface DpmManagerWorkerData {
  region: SharedArrayBuffer;
  mergeThreads: number;
  /** Most pending "wait until merged" requests (default 4096). */
  maxWaiters?: number;
  /** Most entries one merge task applies while holding the index lock (default 4096). */
  mergeBatchEntries?: number;
  /**
   * 'sync': the region is file-backed, and the manager and its merge and cleaning tasks flush it
   * where recovery needs their updates in the file (docs/architecture.md, "Durability"). Default
   * 'async': no flushes.
   */
  durability?: 'async' | 'sync';
  /** Counts the flushes of the manager and its tasks (region-flush.ts, newFlushCounter). */
  flushCounter?: SharedArrayBuffer;
  /**
   * How long (ms) an idle manager sleeps on the doorbell before it looks at the chains' commit words
   * anyway (default 50). KN threads in this process ring the doorbell after each commit; KN threads
   * in other processes (the DPM server, `dinomo dpm`) cannot, so there this is what bounds the delay
   * between a commit and its merge, and the server sets it low. The periodic re-check of stalled
   * chains and of cleaning stays at about every 50 ms whatever this is.
   */
  idleRecheckMs?: number;
}
