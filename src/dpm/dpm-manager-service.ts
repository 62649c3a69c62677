import type { MessagePort } from 'node:worker_threads';
import type { Mutants } from '../config/mutants.js';
import { DinomoError, toWireError, type WireError } from '../errors/index.js';
import type { CleanerOptions } from './cleaner-planner.js';
import type { CleanRequest, CleanResult } from './cleaner.js';
import { DpmManagerCore, type WaiterReport } from './dpm-manager-core.js';
import type { DpmToKnMessage, KnToDpmMessage } from './dpm-protocol.js';
import type { MergeResult } from './merge.js';
import type { RegionFlush } from './region-flush.js';
import type { Region } from './region.js';

/** Where to answer a request: the KN thread's port and its request id. */
export interface ReplyToken {
  port: Pick<MessagePort, 'postMessage'>;
  id: number;
}

export interface ManagerServiceOptions {
  /** Runs one merge pass over chain `rank` somewhere (a piscina pool, or inline in tests). */
  runMerge: (rank: number, maxEntries: number) => Promise<MergeResult>;
  maxWaiters: number;
  mergeBatchEntries: number;
  /** Most merge tasks in flight at once (the merge pool's thread count). */
  maxConcurrentMerges: number;
  /** Runs one cleaning task somewhere (cleaner.ts); without it the manager never cleans. */
  runClean?: (request: CleanRequest) => Promise<CleanResult>;
  cleaner?: CleanerOptions;
  cleanerReserveBlocks?: number;
  /** Deliberate protocol breaks for the linearizability suite (src/config/mutants.ts). */
  mutants?: Mutants;
  /**
   * The manager thread's flush barrier for durability 'sync' (block allocation, failover; see
   * DpmManagerCore). Merge and cleaning tasks flush in their own threads (merge-task.ts).
   */
  flush?: RegionFlush;
}

/** An alloc request waiting for cleaning (or merges) to free a block. */
interface PendingAlloc {
  token: ReplyToken;
  rank: number;
}

/**
 * The DPM manager's message handling and merge scheduling, around DpmManagerCore. It has no timers:
 * the worker entry calls `pump` when the doorbell rings and `tick` periodically. Every merge result
 * calls `pump` again, so merging keeps going until every chain has caught up with its commits.
 */
export class DpmManagerService {
  readonly core: DpmManagerCore<ReplyToken>;
  private readonly options: ManagerServiceOptions;
  private readonly ports = new Set<MessagePort>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly pendingAllocs: PendingAlloc[] = [];
  /** Failovers waiting for the merge task running on their chain to finish. */
  private readonly pendingFailovers: Array<PendingAlloc & { incarnation: number }> = [];
  private stopping = false;

  constructor(region: Region, options: ManagerServiceOptions) {
    this.options = options;
    this.core = new DpmManagerCore<ReplyToken>(region, {
      maxWaiters: options.maxWaiters,
      ...(options.cleaner === undefined ? {} : { cleaner: options.cleaner }),
      ...(options.cleanerReserveBlocks === undefined
        ? {}
        : { cleanerReserveBlocks: options.cleanerReserveBlocks }),
      ...(options.flush === undefined ? {} : { flush: options.flush }),
    });
  }

  /** Serves a KN thread's port. */
  attach(port: MessagePort): void {
    this.ports.add(port);
    port.on('message', (msg: unknown) => this.onKnMessage(port, msg));
    port.on('close', () => this.ports.delete(port));
  }

  onKnMessage(port: Pick<MessagePort, 'postMessage'>, msg: unknown): void {
    if (!isKnMessage(msg)) {
      const id = typeof msg === 'object' && msg !== null ? (msg as { id?: unknown }).id : undefined;
      const error = new DinomoError(
        'INTERNAL',
        `unknown DPM manager request ${JSON.stringify(msg)}`,
      );
      if (typeof id === 'number') reply({ port, id }, errorMessage(id, toWireError(error)));
      return;
    }
    const token: ReplyToken = { port, id: msg.id };
    try {
      if (this.stopping) throw new DinomoError('CLOSED', 'the DPM manager is stopping');
      if (msg.type === 'alloc' || msg.type === 'reopen') {
        if (msg.incarnation !== undefined) this.core.checkNotFenced(msg.rank, msg.incarnation);
        if (msg.type === 'reopen') this.core.sealChain(msg.rank);
        this.onAlloc(token, msg.rank);
        return;
      }
      if (msg.type === 'create-linked') {
        const created = this.core.createLinked(msg.rank, msg.incarnation, msg.entryOffset);
        reply(token, { type: 'created', id: msg.id, entryOffset: created });
        return;
      }
      if (msg.type === 'scan-partitions') {
        const page = this.core.scanPartitions(
          msg.rank,
          msg.incarnation,
          msg.slots,
          msg.tableVersion,
          msg.fromBucket,
          msg.keysMax,
        );
        reply(token, { type: 'scanned', id: msg.id, ...page });
        return;
      }
      if (msg.type === 'failover') {
        if (this.pendingFailovers.length >= this.options.maxWaiters) {
          throw new DinomoError('OVERLOADED', 'too many failovers are pending');
        }
        this.pendingFailovers.push({ token, rank: msg.rank, incarnation: msg.incarnation });
        this.pump();
        return;
      }
      const merged = this.core.waitMerged(msg.rank, msg.lsn, token);
      if (merged !== null) reply(token, { type: 'merged', id: msg.id, mergedLsn: merged });
      else this.pump();
    } catch (err) {
      reply(token, errorMessage(msg.id, toWireError(err)));
    }
  }

  /**
   * Allocates a block for chain `rank`. When KN chains may take no block right now but cleaning (or
   * a running merge) may free one soon, the request waits in FIFO order instead of failing: a KN
   * whose allocation fails fails its clients' writes with REGION_FULL, although the region is
   * mostly dead data that cleaning reclaims within a task or two.
   */
  private onAlloc(token: ReplyToken, rank: number): void {
    this.retryAllocs();
    const blockFree = this.pendingAllocs.length === 0 && this.core.allocator.hasBlockForChain();
    if (blockFree || !this.canWaitForBlock()) {
      // Either a block is there, or nothing can free one: the allocator answers (or says REGION_FULL).
      reply(token, { type: 'alloc-ok', id: token.id, ...this.core.alloc(rank) });
      return;
    }
    this.pendingAllocs.push({ token, rank });
    this.core.cleaner.markDirty();
    this.pump();
  }

  /** True when an allocation may wait: cleaning runs, could start, or a merge may free a block. */
  private canWaitForBlock(): boolean {
    return (
      this.options.runClean !== undefined &&
      this.pendingAllocs.length < this.options.maxWaiters &&
      (this.core.runningCount > 0 || this.core.cleaner.mayFreeSpace())
    );
  }

  /** Serves waiting allocations while blocks are free; fails them once nothing can free a block. */
  private retryAllocs(): void {
    const pending = this.pendingAllocs;
    while (pending.length > 0 && this.core.allocator.hasBlockForChain()) {
      const { token, rank } = pending.shift() as PendingAlloc;
      try {
        reply(token, { type: 'alloc-ok', id: token.id, ...this.core.alloc(rank) });
      } catch (err) {
        reply(token, errorMessage(token.id, toWireError(err)));
      }
    }
    if (pending.length === 0 || this.core.runningCount > 0 || this.core.cleaner.mayFreeSpace()) {
      return;
    }
    this.failAllocs(toWireError(regionFull(this.core.stats().space.blocksTotal)));
  }

  private failAllocs(error: WireError): void {
    for (const { token } of this.pendingAllocs.splice(0))
      reply(token, errorMessage(token.id, error));
  }

  /**
   * Starts the failovers whose chain has no merge task running: fence, cut and seal (see
   * DpmManagerCore.prepareFailover), then answer once the chain is merged through its end.
   */
  private runFailovers(): void {
    const waiting = this.pendingFailovers.splice(0);
    for (const pending of waiting) {
      const { token, rank, incarnation } = pending;
      if (this.core.isMerging(rank)) {
        this.pendingFailovers.push(pending);
        continue;
      }
      try {
        const prepared = this.core.prepareFailover(rank, incarnation, this.options.mutants);
        const done = (mergedLsn: number): void =>
          reply(token, {
            type: 'failed-over',
            id: token.id,
            mergedLsn,
            incarnation: prepared.incarnation,
          });
        const failoverToken: ReplyToken = {
          id: token.id,
          port: {
            postMessage: (msg: DpmToKnMessage) => {
              if (msg.type === 'merged') done(msg.mergedLsn);
              else token.port.postMessage(msg);
            },
          },
        };
        const merged = this.core.waitMerged(rank, prepared.endLsn, failoverToken);
        if (merged !== null) done(merged);
      } catch (err) {
        reply(token, errorMessage(token.id, toWireError(err)));
      }
    }
  }

  /** Submits a merge task for every chain that has unmerged commits and no task running. */
  pump(): void {
    if (this.stopping) return;
    if (this.pendingFailovers.length > 0) this.runFailovers();
    for (const rank of this.core.chainsNeedingMerge()) {
      if (this.core.runningCount >= this.options.maxConcurrentMerges) break;
      this.core.startMerge(rank);
      const task: Promise<void> = this.options
        .runMerge(rank, this.options.mergeBatchEntries)
        .then(
          (result) => answer(this.core.onMergeResult(rank, result)),
          (err: unknown) => answer(this.core.onMergeFailed(rank, toWireError(err))),
        )
        .finally(() => {
          this.inflight.delete(task);
          this.retryAllocs();
          this.pump();
        });
      this.inflight.add(task);
    }
    this.pumpCleaning();
  }

  /** Starts a cleaning task when none runs and the planner finds victims (cleaner-planner.ts). */
  private pumpCleaning(): void {
    const runClean = this.options.runClean;
    if (this.stopping || runClean === undefined) return;
    const request = this.core.cleaner.nextTask(this.pendingAllocs.length > 0);
    if (request === null) return;
    const task: Promise<void> = runClean(request)
      .then(
        (result) => this.core.cleaner.onResult(request, result),
        (err: unknown) => this.core.cleaner.onFailed(request, toWireError(err).message),
      )
      .finally(() => {
        this.inflight.delete(task);
        this.retryAllocs();
        this.pump();
      });
    this.inflight.add(task);
  }

  /** Pumps until no chain has unmerged commits, or a round of merges makes no progress. */
  private async mergeEverything(): Promise<void> {
    for (;;) {
      const before = this.core.entriesMergedTotal;
      this.core.clearStalled();
      this.pump();
      if (this.inflight.size === 0) return;
      while (this.inflight.size > 0) await Promise.all([...this.inflight]);
      const progressed = this.core.entriesMergedTotal > before;
      if (!progressed && this.core.chainsNeedingMerge().length > 0) return;
    }
  }

  /** The periodic re-check: chains that could not progress get another chance. */
  tick(): void {
    this.core.clearStalled();
    this.core.cleaner.markDirty();
    this.retryAllocs();
    this.pump();
  }

  /**
   * Stops gracefully: merges every committed entry first (so a cluster stopped after its KN threads
   * committed their last batches leaves a fully merged DPM), then stops scheduling, waits for
   * running tasks, and fails pending waits with CLOSED.
   */
  async stop(): Promise<void> {
    await this.mergeEverything();
    this.stopping = true;
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    this.failAllocs(toWireError(new DinomoError('CLOSED', 'the DPM manager stopped')));
    for (const { token } of this.pendingFailovers.splice(0)) {
      reply(token, errorMessage(token.id, toWireError(new DinomoError('CLOSED', 'stopped'))));
    }
    answer(
      this.core.failAllWaiters(toWireError(new DinomoError('CLOSED', 'the DPM manager stopped'))),
    );
    for (const port of this.ports) port.close();
    this.ports.clear();
  }
}

function regionFull(blocksTotal: number): DinomoError {
  return new DinomoError(
    'REGION_FULL',
    `all ${blocksTotal} log blocks are in use and cleaning cannot free one: the live data does ` +
      'not fit; raise regionBytes',
  );
}

function answer(report: WaiterReport<ReplyToken>): void {
  for (const { token, mergedLsn } of report.satisfied) {
    reply(token, { type: 'merged', id: token.id, mergedLsn });
  }
  for (const { token, error } of report.failed) reply(token, errorMessage(token.id, error));
}

function reply(token: ReplyToken, msg: DpmToKnMessage): void {
  token.port.postMessage(msg);
}

function errorMessage(id: number, error: WireError): DpmToKnMessage {
  return { type: 'error', id, code: error.code, message: error.message };
}

function isKnMessage(msg: unknown): msg is KnToDpmMessage {
  if (typeof msg !== 'object' || msg === null) return false;
  const m = msg as Record<string, unknown>;
  if (typeof m.id !== 'number' || typeof m.rank !== 'number') return false;
  return (
    m.type === 'alloc' ||
    m.type === 'reopen' ||
    (m.type === 'failover' && typeof m.incarnation === 'number') ||
    (m.type === 'wait-merged' && typeof m.lsn === 'number') ||
    (m.type === 'create-linked' && typeof m.entryOffset === 'number') ||
    (m.type === 'scan-partitions' &&
      Array.isArray(m.slots) &&
      typeof m.tableVersion === 'number' &&
      typeof m.fromBucket === 'number' &&
      typeof m.keysMax === 'number')
  );
}
