import { DinomoError, toWireError, type WireError } from '../errors/index.js';
import { assert } from '../util/assert.js';
import { BlockAllocator, type SpaceStats } from './block-allocator.js';
import { CleanerPlanner, type CleanerOptions, type CleanerStats } from './cleaner-planner.js';
import { IndexWriter, type IndexStats } from './index-writer.js';
import { Block, BlockState, Chain, commitSealedBit } from './layout.js';
import { entryIsLinked, entryIsValid } from './log-entry.js';
import type { MergeResult } from './merge.js';
import type { Mutants } from '../config/mutants.js';
import { currentIncarnation, fenceRank } from '../fabric/fence.js';
import { partitionTagOf, slotOfTaggedKey } from './partition-key.js';
import { slotCount } from '../config/limits.js';
import { recoverChain, sealChain, type ChainRecovery } from './recovery.js';
import { noFlush, type RegionFlush } from './region-flush.js';
import { chainRecordOffset, fenceWordOffset, loadU32, loadU64, type Region } from './region.js';

export interface ManagerCoreOptions {
  /** Most "wait until merged" requests pending at once; more are refused with OVERLOADED. */
  maxWaiters: number;
  /** Cleaning policy (cleaner-planner.ts). */
  cleaner?: CleanerOptions;
  /**
   * Free blocks only the cleaner may take, so that cleaning can always get a destination block and
   * free space. Default 1, or 0 for a region formatted with no block to spare (two per chain).
   */
  cleanerReserveBlocks?: number;
  /**
   * The region's flush barrier (durability 'sync'): allocation flushes before a block is reused and
   * handed out (block-allocator.ts), a failover before it is answered. Default: none.
   */
  flush?: RegionFlush;
}

/** One page of a DINOMO-N partition scan (DpmManagerCore.scanPartitions). */
export interface PartitionScanPage {
  /** Stored keys (partition tag, then the client's key). */
  keys: Uint8Array[];
  /** The index table the page (and `nextBucket`) belongs to. */
  tableVersion: number;
  /** Where the next page starts, or -1 when the scan is complete. */
  nextBucket: number;
}

/** Most keys one partition-scan page may ask for. */
export const scanKeysMax = 4096;

export interface AllocResult {
  blockOffset: number;
  generation: number;
  blockSeq: number;
}

export interface MergeStats {
  tasksRun: number;
  entriesMerged: number;
  blocksFreed: number;
  running: number;
  pendingWaiters: number;
  corruptChains: number[];
}

export interface ManagerStats {
  space: SpaceStats;
  merges: MergeStats;
  index: IndexStats;
  cleaning: CleanerStats;
}

/** Waiters a merge result settled: satisfied ones with the chain's merged lsn, failed ones with why. */
export interface WaiterReport<T> {
  satisfied: { token: T; mergedLsn: number }[];
  failed: { token: T; error: WireError }[];
}

interface Waiter<T> {
  lsn: number;
  token: T;
}

/**
 * The DPM manager's logic without timers, threads or I/O: block allocation, "wait until chain r is
 * merged through lsn" requests, and merge bookkeeping (at most one merge task per chain at a time,
 * chains that cannot progress are not retried in a loop). The worker entry drives it; tests call it
 * directly. `T` is whatever the caller needs to answer a waiter (a port and a request id).
 */
export class DpmManagerCore<T> {
  readonly allocator: BlockAllocator;
  readonly cleaner: CleanerPlanner;
  private readonly region: Region;
  private readonly flush: RegionFlush;
  private readonly maxWaiters: number;
  private readonly waiters = new Map<number, Waiter<T>[]>();
  private waiterCount = 0;
  private readonly running = new Set<number>();
  /** Chains whose last pass could not progress (index full, lock busy); retried on clearStalled. */
  private readonly stalled = new Set<number>();
  private readonly corrupt = new Map<number, string>();
  private tasksRun = 0;
  private entriesMerged = 0;
  private blocksFreed = 0;

  constructor(region: Region, options: ManagerCoreOptions) {
    assert(options.maxWaiters > 0, 'maxWaiters is positive');
    this.region = region;
    this.flush = options.flush ?? noFlush;
    this.maxWaiters = options.maxWaiters;
    const { blockCount, chainCount } = region.geometry;
    const cleanerReserve = options.cleanerReserveBlocks ?? Math.min(1, blockCount - 2 * chainCount);
    this.allocator = new BlockAllocator(region, { cleanerReserve, flush: this.flush });
    this.cleaner = new CleanerPlanner(region, this.allocator, options.cleaner);
  }

  alloc(rank: number): AllocResult {
    const blockOffset = this.allocator.allocate(rank);
    // Fewer free blocks may mean space pressure: let the cleaner look again.
    this.cleaner.markDirty();
    return {
      blockOffset,
      generation: loadU32(this.region, blockOffset + Block.generation),
      blockSeq: loadU32(this.region, blockOffset + Block.blockSeq),
    };
  }

  /**
   * Seals every block of chain `rank` (its KN thread abandoned them after losing its connection), so
   * merges can retire them once the next block is linked. The caller then allocates that block.
   */
  sealChain(rank: number): void {
    this.checkRank(rank);
    if (sealChain(this.region, rank) > 0) this.cleaner.markDirty();
  }

  /**
   * The DPM side of a KN thread's failover: fences incarnation `failedIncarnation` of the rank (its
   * writes fail from now on, and a restart opens with the returned incarnation), cuts torn tails off its chain and seals it. The
   * caller then waits until the chain is merged through `endLsn`. No merge task may be running on
   * the chain (the caller retries once it finished). The `noFencing` mutant skips the fence.
   * With durability 'sync' the fence and the cut are flushed before this returns, so the region's
   * file records the failover before the M-node acts on it.
   */
  prepareFailover(
    rank: number,
    failedIncarnation: number,
    mutants: Mutants = {},
  ): ChainRecovery & { incarnation: number } {
    this.checkRank(rank);
    assert(!this.running.has(rank), 'no merge task runs on a chain being failed over');
    const words = this.region.i32;
    const index = fenceWordOffset(this.region, rank) / 4;
    const incarnation =
      mutants.noFencing === true
        ? currentIncarnation(words, index)
        : fenceRank(words, index, failedIncarnation);
    const recovery = recoverChain(this.region, rank, mutants);
    this.flush();
    this.stalled.delete(rank);
    this.cleaner.markDirty();
    return { ...recovery, incarnation };
  }

  /** Throws FENCED when incarnation `incarnation` of `rank` was fenced (fence.ts). */
  checkNotFenced(rank: number, incarnation: number): void {
    this.checkRank(rank);
    const current = currentIncarnation(this.region.i32, fenceWordOffset(this.region, rank) / 4);
    if (current !== incarnation) {
      throw new DinomoError(
        'FENCED',
        `KN thread ${rank} incarnation ${incarnation} was fenced (now ${current}); it must restart`,
      );
    }
  }

  /**
   * Clover mode's create (docs/baselines.md): indexes the committed linked entry at `entryOffset` of
   * chain `rank` as its key's first version unless the key has one; returns the indexed version. The
   * entry is checked first (inside a block of that chain, below its commit word, a valid linked
   * entry), so a confused KN cannot make the index point at garbage.
   */
  createLinked(rank: number, incarnation: number | undefined, entryOffset: number): number {
    this.checkRank(rank);
    if (incarnation !== undefined) this.checkNotFenced(rank, incarnation);
    const why = this.linkedEntryProblem(rank, entryOffset);
    if (why !== null) {
      throw new DinomoError('INVALID_OPTION', `create of entry ${entryOffset}: ${why}`);
    }
    const writer = new IndexWriter(this.region, this.flush);
    return writer.withLock(() => writer.createLinked(entryOffset));
  }

  /**
   * DINOMO-N mode (docs/baselines.md): one page of the keys a thread acquiring `slots` must copy into
   * its partition, i.e. every indexed key of those slots stored under another partition tag than
   * `rank`. A page continues the scan at `fromBucket` when `tableVersion` is still the live table's;
   * when the table grew meanwhile, the scan starts over from bucket 0 of the new table (the copier
   * copies a key twice at worst, which is harmless: it copies the same value).
   */
  scanPartitions(
    rank: number,
    incarnation: number | undefined,
    slots: readonly number[],
    tableVersion: number,
    fromBucket: number,
    keysMax: number,
  ): PartitionScanPage {
    this.checkRank(rank);
    if (incarnation !== undefined) this.checkNotFenced(rank, incarnation);
    const wanted = new Uint8Array(slotCount);
    if (!Array.isArray(slots) || slots.length > slotCount) {
      throw new DinomoError('INVALID_OPTION', `a partition scan takes at most ${slotCount} slots`);
    }
    for (const slot of slots as readonly unknown[]) {
      if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot >= slotCount) {
        throw new DinomoError(
          'INVALID_OPTION',
          `slot ${String(slot)} is not in 0..${slotCount - 1}`,
        );
      }
      wanted[slot] = 1;
    }
    if (!Number.isInteger(keysMax) || keysMax < 1 || keysMax > scanKeysMax) {
      throw new DinomoError('INVALID_OPTION', `keysMax must be in 1..${scanKeysMax}`);
    }
    if (!Number.isInteger(fromBucket) || fromBucket < 0) {
      throw new DinomoError('INVALID_OPTION', 'fromBucket must be a non-negative integer');
    }
    const accept = (key: Uint8Array): boolean => {
      const tag = partitionTagOf(key);
      return tag >= 0 && tag !== rank && wanted[slotOfTaggedKey(key)] === 1;
    };
    const writer = new IndexWriter(this.region, this.flush);
    return writer.withLock(() => {
      const version = writer.tableVersion;
      const start = version === tableVersion ? fromBucket : 0;
      const keys: Uint8Array[] = [];
      const nextBucket = writer.scanKeys(start, keysMax, accept, keys);
      return { keys, tableVersion: version, nextBucket };
    });
  }

  private linkedEntryProblem(rank: number, entryOffset: number): string | null {
    const g = this.region.geometry;
    const inBlocks =
      Number.isSafeInteger(entryOffset) &&
      entryOffset % 8 === 0 &&
      entryOffset >= g.blocksOffset &&
      entryOffset < g.blocksOffset + g.blockCount * g.blockBytes;
    if (!inBlocks) return 'not an entry offset in the log blocks';
    const block = entryOffset - ((entryOffset - g.blocksOffset) % g.blockBytes);
    const state = loadU32(this.region, block + Block.state);
    // The merge may have passed a sealed block and retired it from the chain before the create of
    // one of its entries arrives; merging a linked entry pins its block, so such a block is still
    // this chain's and is never freed or reused.
    const retiredPinned =
      state === BlockState.merged && loadU32(this.region, block + Block.pinned) !== 0;
    if (
      (state !== BlockState.chain && !retiredPinned) ||
      loadU32(this.region, block + Block.chainRank) !== rank
    ) {
      return `its block is not in chain ${rank}`;
    }
    const committedEnd = block + loadU32(this.region, block + Block.commitBytes);
    const { bytes, view } = this.region;
    if (entryOffset < block + Block.headerBytes || entryOffset >= committedEnd) {
      return 'it is not a committed entry';
    }
    if (
      !entryIsValid(bytes, view, entryOffset, committedEnd) ||
      !entryIsLinked(view, entryOffset)
    ) {
      return 'it is not a valid linked entry';
    }
    return null;
  }

  /** True while a merge task runs on chain `rank`. */
  isMerging(rank: number): boolean {
    return this.running.has(rank);
  }

  /**
   * Registers interest in chain `rank` being merged through `lsn`. Returns the chain's merged lsn when
   * that is already true, or null when the request is pending (a later merge report settles it).
   */
  waitMerged(rank: number, lsn: number, token: T): number | null {
    this.checkRank(rank);
    if (!Number.isSafeInteger(lsn) || lsn < 0) {
      throw new DinomoError('INVALID_OPTION', `lsn ${lsn} is not a non-negative integer`);
    }
    const corruption = this.corrupt.get(rank);
    if (corruption !== undefined) throw new DinomoError('CORRUPT', corruption);
    const merged = this.mergedLsn(rank);
    if (merged >= lsn) return merged;
    if (this.waiterCount >= this.maxWaiters) {
      throw new DinomoError('OVERLOADED', `${this.waiterCount} merge waits are already pending`);
    }
    let list = this.waiters.get(rank);
    if (list === undefined) {
      list = [];
      this.waiters.set(rank, list);
    }
    list.push({ lsn, token });
    this.waiterCount++;
    return null;
  }

  /** Chains with committed entries not yet merged (or a merged head to retire) and no task running. */
  chainsNeedingMerge(): number[] {
    const ranks: number[] = [];
    for (let rank = 0; rank < this.region.geometry.chainCount; rank++) {
      if (this.running.has(rank) || this.stalled.has(rank) || this.corrupt.has(rank)) continue;
      if (this.needsMerge(rank)) ranks.push(rank);
    }
    return ranks;
  }

  /** Marks a merge task for `rank` as running; the caller then runs it and reports the result. */
  startMerge(rank: number): void {
    assert(!this.running.has(rank), 'at most one merge task per chain');
    this.running.add(rank);
  }

  /** Takes the result of a merge task: frees blocks, settles waiters, notes chains that are stuck. */
  onMergeResult(rank: number, result: MergeResult): WaiterReport<T> {
    this.running.delete(rank);
    this.tasksRun++;
    this.entriesMerged += result.applied;
    this.blocksFreed += result.freedBlocks.length;
    this.allocator.release(result.freedBlocks);
    // Merged entries change live counts, and a retired head is a new cleaning candidate.
    if (!result.skipped) this.cleaner.markDirty();
    const report: WaiterReport<T> = { satisfied: [], failed: [] };
    // Settle first: a pass that stopped at a bad entry may still have merged what waiters asked for.
    this.settleWaiters(rank, report);
    if (result.corruption !== null) {
      this.corrupt.set(rank, result.corruption);
      this.failWaiters(rank, toWireError(new DinomoError('CORRUPT', result.corruption)), report);
    } else if (result.indexFull) {
      this.stalled.add(rank);
      const error = new DinomoError(
        'REGION_FULL',
        `chain ${rank} cannot merge: the DPM index is full`,
      );
      this.failWaiters(rank, toWireError(error), report);
    } else if (result.skipped) {
      this.stalled.add(rank);
    }
    return report;
  }

  /** A merge task threw (a bug or a dead worker): its waiters get the error, the chain is retried. */
  onMergeFailed(rank: number, error: WireError): WaiterReport<T> {
    this.running.delete(rank);
    this.stalled.add(rank);
    const report: WaiterReport<T> = { satisfied: [], failed: [] };
    this.failWaiters(rank, error, report);
    return report;
  }

  /** Lets stalled chains be merged again (the worker calls this on its periodic tick). */
  clearStalled(): void {
    this.stalled.clear();
  }

  /** Fails every pending waiter (on stop). */
  failAllWaiters(error: WireError): WaiterReport<T> {
    const report: WaiterReport<T> = { satisfied: [], failed: [] };
    for (const rank of [...this.waiters.keys()]) this.failWaiters(rank, error, report);
    return report;
  }

  /** Entries merged since this manager started. */
  get entriesMergedTotal(): number {
    return this.entriesMerged;
  }

  get runningCount(): number {
    return this.running.size;
  }

  stats(): ManagerStats {
    return {
      space: this.allocator.stats(),
      merges: {
        tasksRun: this.tasksRun,
        entriesMerged: this.entriesMerged,
        blocksFreed: this.blocksFreed,
        running: this.running.size,
        pendingWaiters: this.waiterCount,
        corruptChains: [...this.corrupt.keys()],
      },
      index: new IndexWriter(this.region).stats(),
      cleaning: this.cleaner.stats(),
    };
  }

  mergedLsn(rank: number): number {
    return loadU64(this.region, chainRecordOffset(this.region, rank) + Chain.mergedLsn);
  }

  /** True when the head block has committed bytes past its merge cursor, or is sealed, merged and linked. */
  private needsMerge(rank: number): boolean {
    const head = loadU64(this.region, chainRecordOffset(this.region, rank) + Chain.headBlock);
    if (head === 0) return false;
    const commit = BigInt.asUintN(64, Atomics.load(this.region.i64, (head + Block.commitWord) / 8));
    const end = Math.max(Number(commit & 0xffff_ffffn), Block.headerBytes);
    const cursor = Math.max(loadU32(this.region, head + Block.mergedBytes), Block.headerBytes);
    if (cursor < end) return true;
    const sealed = (Number(commit >> 32n) & commitSealedBit) !== 0;
    return sealed && loadU64(this.region, head + Block.next) !== 0;
  }

  private settleWaiters(rank: number, report: WaiterReport<T>): void {
    const list = this.waiters.get(rank);
    if (list === undefined) return;
    const merged = this.mergedLsn(rank);
    const pending = list.filter((w) => w.lsn > merged);
    for (const w of list)
      if (w.lsn <= merged) report.satisfied.push({ token: w.token, mergedLsn: merged });
    this.waiterCount -= list.length - pending.length;
    if (pending.length === 0) this.waiters.delete(rank);
    else this.waiters.set(rank, pending);
  }

  private failWaiters(rank: number, error: WireError, report: WaiterReport<T>): void {
    const list = this.waiters.get(rank);
    if (list === undefined) return;
    for (const w of list) report.failed.push({ token: w.token, error });
    this.waiterCount -= list.length;
    this.waiters.delete(rank);
  }

  private checkRank(rank: number): void {
    const count = this.region.geometry.chainCount;
    if (!Number.isInteger(rank) || rank < 0 || rank >= count) {
      throw new DinomoError('INVALID_OPTION', `chain rank ${rank} is not in 0..${count - 1}`);
    }
  }
}
