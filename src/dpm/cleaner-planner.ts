import { assert } from '../util/assert.js';
import type { BlockAllocator } from './block-allocator.js';
import type { CleanRequest, CleanResult, CleanVictim } from './cleaner.js';
import { IndexWriter } from './index-writer.js';
import { Block, BlockState } from './layout.js';
import { loadU32, storeU32, type Region } from './region.js';

export interface CleanerOptions {
  /** A merged block whose live bytes are below this fraction of its capacity is cleaned (0.5). */
  liveThreshold?: number;
  /** Under space pressure, blocks below this fraction are cleaned, emptiest first (0.9). */
  pressureLiveMax?: number;
  /** Free blocks below which there is space pressure; default max(10% of blocks, 2 x chains). */
  lowWaterBlocks?: number;
  /** Most victims one task is given (it stops early when its destination fills up). Default 8. */
  victimsPerTask?: number;
  /** Victim entries looked at per hold of the index writer lock. Default 256. */
  batchEntries?: number;
}

export interface CleanerStats {
  tasksRun: number;
  tasksFailed: number;
  running: number;
  /** Victims the cleaner emptied and freed. */
  blocksCleaned: number;
  /** Blocks cleaning tasks set free (victims, and destination blocks sealed with nothing live). */
  blocksFreed: number;
  /** Destination blocks taken from the allocator. */
  destBlocks: number;
  entriesCopied: number;
  bytesCopied: number;
  deadCopies: number;
  lowWaterBlocks: number;
  /** Free blocks kept for the cleaner (KN chains may not take them). */
  reserveBlocks: number;
  corruptBlocks: number;
  /** Why the last task failed (a bug or a dead pool thread), or null. */
  lastError: string | null;
}

interface Candidate {
  block: number;
  generation: number;
  liveBytes: number;
}

/**
 * The manager-side half of cleaning (cleaner.ts is the task side): picks victims, owns the open
 * destination block, and keeps the books. No timers and no threads: the service asks `nextTask`
 * whenever it pumps, runs the task in the pool and hands the result to `onResult`.
 *
 * Policy: merged blocks whose live bytes are below `liveThreshold` of the block are cleaned, emptiest
 * first. When free blocks drop below the low-water mark (or a KN is waiting for a block), blocks up to
 * `pressureLiveMax` live qualify too: each still frees more than it copies. One task runs at a time,
 * so the victims and the destination of a task are never touched by another cleaning task.
 */
export class CleanerPlanner {
  private readonly region: Region;
  private readonly allocator: BlockAllocator;
  private readonly liveThreshold: number;
  private readonly pressureLiveMax: number;
  private readonly lowWater: number;
  private readonly victimsPerTask: number;
  private readonly batchEntries: number;
  private readonly capacity: number;
  private openDest = 0;
  private destSeq = 0;
  /** The victim a full destination cut short; the next task continues it first. */
  private partial: CleanVictim | null = null;
  /** Blocks (by offset) with a corrupt entry, and the generation it was found in. */
  private readonly corrupt = new Map<number, number>();
  private runningTask: CleanRequest | null = null;
  /** Something changed (merges, allocations, cleaning progress) since a scan last found nothing. */
  private dirty = true;
  private lastError: string | null = null;
  private readonly counters = {
    tasksRun: 0,
    tasksFailed: 0,
    blocksCleaned: 0,
    blocksFreed: 0,
    destBlocks: 0,
    entriesCopied: 0,
    bytesCopied: 0,
    deadCopies: 0,
  };

  constructor(region: Region, allocator: BlockAllocator, options: CleanerOptions = {}) {
    const g = region.geometry;
    this.region = region;
    this.allocator = allocator;
    this.liveThreshold = options.liveThreshold ?? 0.5;
    this.pressureLiveMax = options.pressureLiveMax ?? 0.9;
    this.lowWater =
      options.lowWaterBlocks ?? Math.max(Math.ceil(g.blockCount / 10), 2 * g.chainCount);
    this.victimsPerTask = options.victimsPerTask ?? 8;
    this.batchEntries = options.batchEntries ?? 256;
    this.capacity = g.blockBytes - Block.headerBytes;
    assert(
      this.liveThreshold >= 0 && this.liveThreshold <= this.pressureLiveMax,
      'liveThreshold <= pressureLiveMax',
    );
    assert(this.pressureLiveMax < 1, 'cleaning a full block frees nothing');
    assert(this.victimsPerTask > 0 && this.batchEntries > 0, 'tasks clean something');
    this.adoptLeftovers();
  }

  get running(): boolean {
    return this.runningTask !== null;
  }

  /** True when free blocks are below the low-water mark. */
  get underPressure(): boolean {
    return this.allocator.freeCount < this.lowWater;
  }

  /** Merges or allocations changed live counts or free space: the next `nextTask` scans again. */
  markDirty(): void {
    this.dirty = true;
  }

  /**
   * True when cleaning is running or could start under pressure: a waiting allocation may still be
   * served. Scans the block headers.
   */
  mayFreeSpace(): boolean {
    return this.running || this.candidates(this.pressureLiveMax).length > 0;
  }

  /**
   * The next cleaning task, or null (one is running, nothing qualifies, or no block is free for a
   * destination). `pressure`: a KN is waiting for a block, so clean as if below the low-water mark.
   * Takes a destination block from the allocator (the cleaner reserve included) when none is open.
   */
  nextTask(pressure = false): CleanRequest | null {
    if (this.running || !this.dirty) return null;
    this.dirty = false;
    const limit = pressure || this.underPressure ? this.pressureLiveMax : this.liveThreshold;
    const victims = this.pickVictims(this.candidates(limit));
    if (victims.length === 0) return null;
    if (this.openDest === 0) {
      if (this.allocator.freeCount === 0) return null;
      this.openDest = this.allocator.allocateCleanerBlock(this.destSeq++);
      this.counters.destBlocks++;
    }
    this.runningTask = { destBlock: this.openDest, victims, batchEntries: this.batchEntries };
    return this.runningTask;
  }

  /** Takes a task's result: returns freed blocks to the allocator and remembers where it stopped. */
  onResult(request: CleanRequest, result: CleanResult): void {
    assert(this.runningTask === request, 'results come for the running task');
    this.runningTask = null;
    const c = this.counters;
    c.tasksRun++;
    c.blocksFreed += result.freedBlocks.length;
    c.entriesCopied += result.entriesCopied;
    c.bytesCopied += result.bytesCopied;
    c.deadCopies += result.deadCopies;
    this.allocator.release(result.freedBlocks);
    if (result.destSealed) this.openDest = 0;
    this.partial = null;
    let progress = result.freedBlocks.length > 0 || result.destSealed;
    for (const [i, v] of result.victims.entries()) {
      if (v.state === 'freed') c.blocksCleaned++;
      if (v.state === 'corrupt') this.corrupt.set(v.block, v.generation);
      if (v.state === 'partial' && this.partial === null) this.partial = v;
      progress ||= v.cursor !== request.victims[i]?.cursor;
    }
    // A task that changed nothing would be planned again identically: wait for merges instead.
    this.dirty = progress;
  }

  /**
   * A task threw (a bug or a dead pool thread). Victims it left claimed are let go of (merged, or
   * freed when nothing in them is live), and its destination is no longer used: it may be sealed or
   * half written, and a fresh one is safer than guessing.
   */
  onFailed(request: CleanRequest, message: string): void {
    assert(this.runningTask === request, 'failures come for the running task');
    this.runningTask = null;
    this.counters.tasksFailed++;
    this.lastError = message;
    this.openDest = 0;
    this.partial = null;
    const freed: number[] = [];
    new IndexWriter(this.region).withLock(() => {
      for (const v of request.victims) {
        const block = v.block;
        if (loadU32(this.region, block + Block.state) !== BlockState.cleaning) continue;
        const empty = loadU32(this.region, block + Block.liveEntries) === 0;
        storeU32(this.region, block + Block.state, empty ? BlockState.free : BlockState.merged);
        if (empty) freed.push(block);
      }
    });
    this.allocator.release(freed);
    this.counters.blocksFreed += freed.length;
  }

  stats(): CleanerStats {
    return {
      ...this.counters,
      running: this.running ? 1 : 0,
      lowWaterBlocks: this.lowWater,
      reserveBlocks: this.allocator.cleanerReserve,
      corruptBlocks: this.corrupt.size,
      lastError: this.lastError,
    };
  }

  /**
   * A manager that starts on a region another manager used may find cleaner blocks it left behind:
   * an open destination (adopted as this planner's, or, if there are several, sealed) and victims of
   * an interrupted task (merged again, or freed when nothing in them is live). Runs before any task,
   * under the index writer lock, so merges see consistent states.
   */
  private adoptLeftovers(): void {
    const { blockCount, blocksOffset, blockBytes } = this.region.geometry;
    const freed: number[] = [];
    new IndexWriter(this.region).withLock(() => {
      for (let i = 0; i < blockCount; i++) {
        const block = blocksOffset + i * blockBytes;
        const state = loadU32(this.region, block + Block.state);
        if (state === BlockState.cleanerOpen && this.openDest === 0) {
          this.openDest = block;
        } else if (state === BlockState.cleanerOpen || state === BlockState.cleaning) {
          const empty = loadU32(this.region, block + Block.liveEntries) === 0;
          storeU32(this.region, block + Block.state, empty ? BlockState.free : BlockState.merged);
          if (empty) freed.push(block);
        }
      }
    });
    this.allocator.release(freed);
  }

  /** The partial victim first (if it is still the same merged block), then the emptiest blocks. */
  private pickVictims(candidates: readonly Candidate[]): CleanVictim[] {
    const victims: CleanVictim[] = [];
    let room = this.openDest === 0 ? this.capacity : this.destRoom(this.openDest);
    const partial = this.partial;
    if (partial !== null && this.isMerged(partial.block, partial.generation)) {
      victims.push(partial);
      room -= loadU32(this.region, partial.block + Block.liveBytes);
    }
    for (const c of candidates) {
      if (victims.length >= this.victimsPerTask || room <= 0) break;
      if (c.block === partial?.block) continue;
      victims.push({ block: c.block, generation: c.generation, cursor: Block.headerBytes });
      room -= c.liveBytes;
    }
    return victims;
  }

  /** Merged blocks below `limit` live (a fraction of the capacity), emptiest first. */
  private candidates(limit: number): Candidate[] {
    const { blockCount, blocksOffset, blockBytes } = this.region.geometry;
    const out: Candidate[] = [];
    for (let i = 0; i < blockCount; i++) {
      const block = blocksOffset + i * blockBytes;
      if (loadU32(this.region, block + Block.state) !== BlockState.merged) continue;
      // Clover-mode chains and shortcuts reach a pinned block's entries directly: never move them.
      if (loadU32(this.region, block + Block.pinned) !== 0) continue;
      const generation = loadU32(this.region, block + Block.generation);
      if (this.corrupt.get(block) === generation) continue;
      const liveBytes = loadU32(this.region, block + Block.liveBytes);
      if (liveBytes < limit * this.capacity) out.push({ block, generation, liveBytes });
    }
    return out.sort((a, b) => a.liveBytes - b.liveBytes || a.block - b.block);
  }

  private isMerged(block: number, generation: number): boolean {
    return (
      loadU32(this.region, block + Block.state) === BlockState.merged &&
      loadU32(this.region, block + Block.generation) === generation
    );
  }

  private destRoom(block: number): number {
    const commitBytes = loadU32(this.region, block + Block.commitBytes);
    return this.region.geometry.blockBytes - Math.max(commitBytes, Block.headerBytes);
  }
}
