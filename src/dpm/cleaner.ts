import { assert } from '../util/assert.js';
import { IndexWriter } from './index-writer.js';
import { Block, BlockState, blockMagic, cleanerChainRank, commitSealedBit } from './layout.js';
import { Entry, EntryOp, entryBytes, entryIsValid, entrySpanAt, writeEntry } from './log-entry.js';
import { noFlush, type RegionFlush } from './region-flush.js';
import { loadU32, storeU32, type Region } from './region.js';

/**
 * Log cleaning (DESIGN.md section 6, "Allocation and cleaning"): copies the live entries of merged
 * blocks ("victims") into a cleaner destination block, repoints the index at the copies, and frees
 * the victims. Runs as a piscina task like a merge (merge-task.ts) and is planned by the manager
 * (cleaner-planner.ts); this file only touches the region, so tests run it inline.
 *
 * Ordering, for one batch of entries of one victim:
 *  1. Under the index writer lock: find the entries that are live (the index slot of the entry's key
 *     points at exactly this entry).
 *  2. Without the lock: copy them to the destination (same key, value and version, the destination's
 *     generation, a new CRC), then store the destination's commit word, so the index never points
 *     past a commit offset.
 *  3. Under the lock again: repoint each slot at its copy, but only if it still points at the
 *     original (a merge may have replaced the key meanwhile; that copy is then dead and not live).
 * The lock is held per batch, not per block, so merges wait at most one batch.
 *
 * With durability 'sync', step 2 ends with a flush: the copies and the destination's commit word are
 * in the region's file before any slot can point at them there. The victim needs no flush before it
 * is freed: reusing a block flushes first (block-allocator.ts), and recovery recomputes every block's
 * state from the index (repairBlockStates), so a victim marked free in the file while the file's
 * index still points into it is merged again, not reused.
 */

/** A block the manager wants cleaned: its generation when picked and where a previous task stopped. */
export interface CleanVictim {
  block: number;
  generation: number;
  /** Offset in the block of the first entry not yet looked at (0 or 64 = from the start). */
  cursor: number;
}

/** One cleaning task: copy the live entries of `victims` (in order) into `destBlock`. */
export interface CleanRequest {
  /** An open cleaner block (state `cleanerOpen`, chain rank `cleanerChainRank`). */
  destBlock: number;
  victims: CleanVictim[];
  /** Most victim entries looked at per hold of the index writer lock. */
  batchEntries: number;
}

/**
 * `freed`: the victim is free. `partial`: the destination filled up first; continue at `cursor`.
 * `skipped`: the block was no longer a merged block of that generation (a merge freed it). `corrupt`:
 * an entry below its commit offset is malformed; the block stays merged and should not be retried.
 */
export type VictimState = 'freed' | 'partial' | 'skipped' | 'corrupt';

export interface VictimOutcome extends CleanVictim {
  state: VictimState;
}

/** What one cleaning task did; plain data, so it crosses threads as is. */
export interface CleanResult {
  victims: VictimOutcome[];
  /** Region offsets of blocks this task set free (to go back to the allocator). */
  freedBlocks: number[];
  /** True when the destination was sealed (it filled up): the next task needs a new one. */
  destSealed: boolean;
  /** Copies the index now points to, and their bytes. */
  entriesCopied: number;
  bytesCopied: number;
  /** Copies made useless by a merge that replaced the key between the copy and the repoint. */
  deadCopies: number;
  /** Why a victim could not be cleaned, or null. */
  corruption: string | null;
}

/** Test seams: `afterCopy` runs between a batch's copy (commit word stored) and its repoint. */
export interface CleanHooks {
  afterCopy?: () => void;
}

/** Cleans the victims of `request` in order until they are done or the destination is full. */
export function cleanBlocks(
  region: Region,
  request: CleanRequest,
  hooks: CleanHooks = {},
  flush: RegionFlush = noFlush,
): CleanResult {
  assert(request.batchEntries > 0, 'a cleaning batch looks at one entry or more');
  const result: CleanResult = {
    victims: [],
    freedBlocks: [],
    destSealed: false,
    entriesCopied: 0,
    bytesCopied: 0,
    deadCopies: 0,
    corruption: null,
  };
  const writer = new IndexWriter(region);
  const dest = new DestBlock(region, request.destBlock);
  for (const victim of request.victims) {
    if (result.destSealed) {
      result.victims.push({ ...victim, state: 'partial' });
      continue;
    }
    result.victims.push(cleanVictim(region, writer, dest, victim, request, hooks, result, flush));
  }
  return result;
}

/**
 * Cleans one victim: claims it (merged -> cleaning, so no merge frees it while its entries are being
 * read), copies batch by batch, and lets go of it: free when nothing in it is live any more,
 * otherwise merged again (the destination filled up, or an entry was corrupt).
 */
function cleanVictim(
  region: Region,
  writer: IndexWriter,
  dest: DestBlock,
  victim: CleanVictim,
  request: CleanRequest,
  hooks: CleanHooks,
  result: CleanResult,
  flush: RegionFlush,
): VictimOutcome {
  const block = victim.block;
  if (!writer.withLock(() => claimVictim(region, victim))) return { ...victim, state: 'skipped' };
  const scan = new VictimScan(region, victim);
  let state: VictimState;
  let completed = false;
  try {
    state = copyLiveEntries(region, writer, dest, scan, request, hooks, result, flush);
    completed = true;
  } finally {
    // Let go of the victim even if the copy threw, so it is not left claimed.
    const freed = writer.withLock(() => releaseVictim(region, block, result.freedBlocks));
    if (completed) {
      assert(freed || scan.cursor < scan.end, 'a fully scanned victim has no live entry left');
      if (freed) state = 'freed';
    }
  }
  return { block, generation: victim.generation, cursor: scan.cursor, state };
}

/** The batch loop of cleanVictim: `partial` when the destination filled up or the scan ended. */
function copyLiveEntries(
  region: Region,
  writer: IndexWriter,
  dest: DestBlock,
  scan: VictimScan,
  request: CleanRequest,
  hooks: CleanHooks,
  result: CleanResult,
  flush: RegionFlush,
): VictimState {
  while (scan.cursor < scan.end) {
    const batch = writer.withLock(() => scan.planBatch(writer, dest, request.batchEntries));
    const copies = dest.copyAll(batch.sources, scan);
    if (copies.length > 0) {
      dest.publish();
      flush();
      hooks.afterCopy?.();
      writer.withLock(() => repointAll(region, writer, batch.sources, copies, result));
      dest.markIndexed();
    }
    scan.cursor = copies.length < batch.sources.length ? scan.failedAt : batch.next;
    if (scan.corruption !== null) {
      result.corruption = scan.corruption;
      return 'corrupt';
    }
    if (batch.destFull) {
      writer.withLock(() => dest.seal(result.freedBlocks));
      result.destSealed = true;
      return 'partial';
    }
  }
  return 'partial';
}

/** Under the index lock: takes a merged block of the expected generation for cleaning. */
function claimVictim(region: Region, victim: CleanVictim): boolean {
  const ok =
    loadU32(region, victim.block + Block.state) === BlockState.merged &&
    loadU32(region, victim.block + Block.generation) === victim.generation &&
    loadU32(region, victim.block + Block.magic) === blockMagic;
  if (ok) storeU32(region, victim.block + Block.state, BlockState.cleaning);
  return ok;
}

/**
 * Under the index lock: a victim with no live entry becomes free (true); otherwise it is merged
 * again, so a later merge that kills its last entry frees it as usual.
 */
function releaseVictim(region: Region, block: number, freed: number[]): boolean {
  assert(loadU32(region, block + Block.state) === BlockState.cleaning, 'the victim was claimed');
  if (loadU32(region, block + Block.liveEntries) === 0) {
    storeU32(region, block + Block.state, BlockState.free);
    freed.push(block);
    return true;
  }
  storeU32(region, block + Block.state, BlockState.merged);
  return false;
}

/** Under the index lock: repoints each slot that still points at its original. */
function repointAll(
  region: Region,
  writer: IndexWriter,
  sources: readonly number[],
  copies: readonly number[],
  result: CleanResult,
): void {
  for (let i = 0; i < copies.length; i++) {
    const copy = copies[i] as number;
    if (writer.repoint(sources[i] as number, copy, result.freedBlocks)) {
      result.entriesCopied++;
      result.bytesCopied += entrySizeAt(region.view, copy);
    } else {
      result.deadCopies++;
    }
  }
}

function entrySizeAt(view: DataView, at: number): number {
  return entrySpanAt(view, at);
}

interface PlannedBatch {
  /** Region offsets of the live entries to copy, in log order. */
  sources: number[];
  /** Offset in the victim after the last entry looked at. */
  next: number;
  /** True when the next live entry did not fit the destination. */
  destFull: boolean;
}

/** Walks a claimed victim's committed entries (its content is stable while it is claimed). */
class VictimScan {
  readonly end: number;
  cursor: number;
  corruption: string | null = null;
  /** Where the copy phase met a corrupt entry (the cursor stops there). */
  failedAt = 0;
  private readonly region: Region;
  private readonly block: number;
  private readonly generation: number;

  constructor(region: Region, victim: CleanVictim) {
    this.region = region;
    this.block = victim.block;
    this.generation = victim.generation;
    const commit = BigInt.asUintN(
      64,
      Atomics.load(region.i64, (victim.block + Block.commitWord) / 8),
    );
    this.end = Math.min(
      Math.max(Number(commit & 0xffff_ffffn), Block.headerBytes),
      region.geometry.blockBytes,
    );
    this.cursor = Math.min(Math.max(victim.cursor, Block.headerBytes), this.end);
  }

  /**
   * Under the index lock: looks at up to `maxEntries` entries from the cursor and picks the live
   * ones that fit the destination. Checks only the header here (cheap, under the lock); the copy
   * checks the CRC before it writes a new one.
   */
  planBatch(writer: IndexWriter, dest: DestBlock, maxEntries: number): PlannedBatch {
    const { bytes, view } = this.region;
    const batch: PlannedBatch = { sources: [], next: this.cursor, destFull: false };
    let room = dest.room;
    for (let n = 0; n < maxEntries && batch.next < this.end; n++) {
      const at = this.block + batch.next;
      const size = this.entrySize(at);
      if (size === 0) break;
      if (view.getUint8(at + Entry.op) === EntryOp.put) {
        const keyLen = view.getUint16(at + Entry.keyLen, true);
        const key = bytes.subarray(at + Entry.key, at + Entry.key + keyLen);
        if (writer.lookup(key) === at) {
          if (size > room) {
            batch.destFull = true;
            break;
          }
          room -= size;
          batch.sources.push(at);
        }
      }
      batch.next += size;
    }
    return batch;
  }

  /** The padded size of the entry at `at`, or 0 (and `corruption` set) when its header is bad. */
  private entrySize(at: number): number {
    const view = this.region.view;
    const op = view.getUint8(at + Entry.op);
    const keyLen = view.getUint16(at + Entry.keyLen, true);
    const size = entrySpanAt(view, at);
    const ok =
      (op === EntryOp.put || op === EntryOp.delete) &&
      keyLen > 0 &&
      at + size <= this.block + this.end &&
      view.getUint32(at + Entry.generation, true) === this.generation;
    if (ok) return size;
    this.corruption = `block ${this.block}: the committed entry at offset ${at - this.block} is malformed`;
    return 0;
  }

  /** Copy phase: a corrupt source stops the batch there. */
  sourceIsValid(at: number): boolean {
    if (entryIsValid(this.region.bytes, this.region.view, at, this.block + this.end)) return true;
    this.corruption = `block ${this.block}: the committed entry at offset ${at - this.block} fails its checksum`;
    this.failedAt = at - this.block;
    return false;
  }
}

/**
 * The open cleaner block entries are copied into. Its fill level and entry count live in its commit
 * word, so a task picks up where the previous one left off, and the block is self-describing (commit
 * word, valid CRCs) for a recovery pass.
 */
class DestBlock {
  private readonly region: Region;
  private readonly block: number;
  private readonly generation: number;
  private fill: number;
  private entries: number;

  constructor(region: Region, block: number) {
    this.region = region;
    this.block = block;
    assert(
      loadU32(region, block + Block.state) === BlockState.cleanerOpen &&
        loadU32(region, block + Block.chainRank) === cleanerChainRank,
      'cleaning copies into an open cleaner block',
    );
    this.generation = loadU32(region, block + Block.generation);
    const commit = BigInt.asUintN(64, Atomics.load(region.i64, (block + Block.commitWord) / 8));
    this.fill = Math.max(Number(commit & 0xffff_ffffn), Block.headerBytes);
    this.entries = Number(commit >> 32n) & ~commitSealedBit;
  }

  get room(): number {
    return this.region.geometry.blockBytes - this.fill;
  }

  /** Copies the valid sources (stopping at the first corrupt one); returns the copies' offsets. */
  copyAll(sources: readonly number[], scan: VictimScan): number[] {
    const { bytes, view } = this.region;
    const copies: number[] = [];
    for (const from of sources) {
      if (!scan.sourceIsValid(from)) break;
      const keyLen = view.getUint16(from + Entry.keyLen, true);
      const valueLen = view.getUint32(from + Entry.valueLen, true);
      const keyAt = from + Entry.key;
      const to = this.block + this.fill;
      assert(this.fill + entryBytes(keyLen, valueLen) <= this.region.geometry.blockBytes, 'fits');
      this.fill += writeEntry(
        bytes,
        view,
        to,
        EntryOp.put,
        bytes.subarray(keyAt, keyAt + keyLen),
        bytes.subarray(keyAt + keyLen, keyAt + keyLen + valueLen),
        this.generation,
        view.getUint32(from + Entry.epoch, true),
        view.getUint32(from + Entry.seqHi, true) * 0x1_0000_0000 +
          view.getUint32(from + Entry.seqLo, true),
      );
      this.entries++;
      copies.push(to);
    }
    return copies;
  }

  /** Stores the commit word, after the copied bytes it covers and before any slot points at them. */
  publish(sealed = false): void {
    const info = (this.entries | (sealed ? commitSealedBit : 0)) >>> 0;
    const word = (BigInt(info) << 32n) | BigInt(this.fill);
    Atomics.store(this.region.i64, (this.block + Block.commitWord) / 8, BigInt.asIntN(64, word));
  }

  /**
   * After the repoint: every copy was offered to the index, so the block is merged through its
   * commit offset (recovery must not treat the copies as unmerged log entries).
   */
  markIndexed(): void {
    storeU32(this.region, this.block + Block.mergedBytes, this.fill);
  }

  /** Under the index lock: seals the block; it becomes merged, or free if nothing in it is live. */
  seal(freed: number[]): void {
    this.publish(true);
    this.markIndexed();
    const empty = loadU32(this.region, this.block + Block.liveEntries) === 0;
    storeU32(this.region, this.block + Block.state, empty ? BlockState.free : BlockState.merged);
    if (empty) freed.push(this.block);
  }
}
