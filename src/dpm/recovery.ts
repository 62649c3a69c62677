import type { Mutants } from '../config/mutants.js';
import { countIndexedEntries } from './cleaner-check.js';
import { IndexWriter } from './index-writer.js';
import { Block, BlockState, Chain, IndexHeader, commitSealedBit, lsnOf } from './layout.js';
import { entryIsValid, entrySpanAt, Entry } from './log-entry.js';
import {
  blockIndexOf,
  chainRecordOffset,
  loadU32,
  loadU64,
  storeU32,
  type Region,
} from './region.js';

/** What recovery found and changed, per region. */
export interface RecoveryReport {
  chainsScanned: number;
  blocksScanned: number;
  /** Blocks whose commit offset pointed past an entry that failed its checksum (a torn tail). */
  tornBlocks: number;
  /** Committed-looking bytes dropped because they were torn. */
  tornBytes: number;
  /** Blocks sealed so that no KN writes to a block from before the restart. */
  blocksSealed: number;
}

/**
 * Recovery after the DPM restarts (or after a crash of the machine holding the region). A KN commits
 * a batch with two one-sided writes, the entries and then the commit word, and makes them durable
 * with one persist; a crash before the persist completes may keep any subset of those 8-byte words,
 * including the commit word without some of the entries it covers. So for every chain block, the
 * entries between the merge cursor and the commit offset are checked (checksum, generation, bounds),
 * and the commit offset is cut back to the end of the last good entry: a torn tail was never
 * acknowledged (acks follow the persist), so dropping it loses nothing a client was promised.
 *
 * Every chain block is then sealed: KN threads must take a fresh block after a restart (they learn
 * of it because their fabric connection broke), so the merge can retire the old ones. Locks held by
 * DPM threads that died with the old process are cleared. Runs before any merge or allocation.
 *
 * The `acceptTornEntries` mutant skips the entry checks and keeps every commit offset as it is.
 */
export function recoverRegion(region: Region, mutants: Mutants = {}): RecoveryReport {
  const report: RecoveryReport = {
    chainsScanned: 0,
    blocksScanned: 0,
    tornBlocks: 0,
    tornBytes: 0,
    blocksSealed: 0,
  };
  Atomics.store(region.i32, (region.geometry.indexOffset + IndexHeader.lock) / 4, 0);
  for (let rank = 0; rank < region.geometry.chainCount; rank++) {
    const chain = chainRecordOffset(region, rank);
    Atomics.store(region.i32, (chain + Chain.mergeLock) / 4, 0);
    report.chainsScanned++;
    forEachChainBlock(region, rank, (block) => {
      report.blocksScanned++;
      if (mutants.acceptTornEntries !== true) truncateTornTail(region, block, report);
      if (sealBlock(region, block)) report.blocksSealed++;
    });
  }
  return report;
}

/**
 * Seals every block of chain `rank` at its commit offset, so the chain's merge can move past them.
 * Used when a KN thread reopens its chain after losing its connection: it has abandoned its blocks
 * and will write only to the fresh block it is given next. Returns the number of blocks sealed.
 */
export function sealChain(region: Region, rank: number): number {
  let sealed = 0;
  forEachChainBlock(region, rank, (block) => {
    if (sealBlock(region, block)) sealed++;
  });
  return sealed;
}

/** What a failover found in a failed KN thread's chain (see recoverChain). */
export interface ChainRecovery {
  tornBlocks: number;
  tornBytes: number;
  blocksSealed: number;
  /** The LSN just past the chain's last committed entry: merging through it settles the chain. */
  endLsn: number;
}

/**
 * Failover of one KN thread (DESIGN.md section 8): after the thread was fenced, its chain is cut
 * back to the last entry that passes its checksum in every block (a batch whose commit word landed
 * without all of its entries was never acknowledged), and every block is sealed, so the merge can
 * apply the chain through its commit offsets and retire it once a restart links a new block. The
 * caller must make sure no merge task is running on the chain meanwhile.
 */
export function recoverChain(region: Region, rank: number, mutants: Mutants = {}): ChainRecovery {
  const report: RecoveryReport = {
    chainsScanned: 1,
    blocksScanned: 0,
    tornBlocks: 0,
    tornBytes: 0,
    blocksSealed: 0,
  };
  forEachChainBlock(region, rank, (block) => {
    report.blocksScanned++;
    if (mutants.acceptTornEntries !== true) truncateTornTail(region, block, report);
    if (sealBlock(region, block)) report.blocksSealed++;
  });
  const { tornBlocks, tornBytes, blocksSealed } = report;
  return { tornBlocks, tornBytes, blocksSealed, endLsn: chainEndLsn(region, rank) };
}

/** The LSN just past chain `rank`'s last committed entry: merging through it settles the chain. */
export function chainEndLsn(region: Region, rank: number): number {
  let endLsn = loadU64(region, chainRecordOffset(region, rank) + Chain.mergedLsn);
  forEachChainBlock(region, rank, (block) => {
    const commit = BigInt.asUintN(64, Atomics.load(region.i64, (block + Block.commitWord) / 8));
    const end = Math.max(Number(commit & 0xffff_ffffn), Block.headerBytes);
    endLsn = Math.max(endLsn, lsnOf(loadU32(region, block + Block.blockSeq), end));
  });
  return endLsn;
}

/**
 * The chains of a reopened region that hold committed entries not yet merged, with the LSN to
 * merge through. A restarted cluster waits for them before it serves: a chain whose rank no thread
 * runs now (a KN that was added or replaced in the last run) is merged only in the background, and
 * until then a read through the index would miss writes that were acknowledged. Call it before any
 * KN thread writes (a fresh block's first LSN is not a merge target).
 */
export function unmergedChains(region: Region): Array<{ rank: number; lsn: number }> {
  const pending: Array<{ rank: number; lsn: number }> = [];
  for (let rank = 0; rank < region.geometry.chainCount; rank++) {
    const merged = loadU64(region, chainRecordOffset(region, rank) + Chain.mergedLsn);
    const lsn = chainEndLsn(region, rank);
    if (lsn > merged) pending.push({ rank, lsn });
  }
  return pending;
}

function forEachChainBlock(region: Region, rank: number, visit: (block: number) => void): void {
  const chain = chainRecordOffset(region, rank);
  let block = loadU64(region, chain + Chain.headBlock);
  for (let hops = 0; block !== 0 && hops < region.geometry.blockCount; hops++) {
    visit(block);
    block = loadU64(region, block + Block.next);
  }
}

/** Cuts the commit offset of `block` back to the end of its last valid entry. */
function truncateTornTail(region: Region, block: number, report: RecoveryReport): void {
  const { bytes, view, geometry } = region;
  const commitIndex = (block + Block.commitWord) / 8;
  const commit = BigInt.asUintN(64, Atomics.load(region.i64, commitIndex));
  const commitBytes = Math.min(Number(commit & 0xffff_ffffn), geometry.blockBytes);
  const info = Number(commit >> 32n);
  const generation = loadU32(region, block + Block.generation);
  // Entries below the merge cursor were checked when they were merged; count them again anyway,
  // because the commit word stores the entry count of the whole block.
  let at = Block.headerBytes;
  let count = 0;
  while (at < commitBytes) {
    const entry = block + at;
    const valid =
      entryIsValid(bytes, view, entry, block + commitBytes) &&
      view.getUint32(entry + Entry.generation, true) === generation;
    if (!valid) break;
    at += entrySpanAt(view, entry);
    count++;
  }
  const end = Math.max(at, Block.headerBytes);
  if (end >= commitBytes) return;
  report.tornBlocks++;
  report.tornBytes += commitBytes - end;
  const sealed = info & commitSealedBit;
  Atomics.store(region.i64, commitIndex, (BigInt((count | sealed) >>> 0) << 32n) | BigInt(end));
}

/** Sets the sealed bit of the block's commit word; false when it was already set. */
function sealBlock(region: Region, block: number): boolean {
  const commitIndex = (block + Block.commitWord) / 8;
  const commit = BigInt.asUintN(64, Atomics.load(region.i64, commitIndex));
  const info = Number(commit >> 32n);
  if ((info & commitSealedBit) !== 0) return false;
  const sealedInfo = BigInt((info | commitSealedBit) >>> 0);
  Atomics.store(
    region.i64,
    commitIndex,
    BigInt.asIntN(64, (sealedInfo << 32n) | (commit & 0xffff_ffffn)),
  );
  return true;
}

/** What repairBlockStates changed. */
export interface BlockRepairReport {
  /** Blocks whose live entry or byte counts disagreed with the index and were set from it. */
  countsFixed: number;
  /** Blocks whose state was set from the chains and the index (see repairBlockStates). */
  statesFixed: number;
  /** Blocks in state `chain` that no chain reaches and that hold committed bytes: left alone. */
  strays: number;
}

/**
 * Makes the block headers' bookkeeping agree with the chains and the index after a restart of a
 * file-backed region. The DPM keeps block states and live counts incrementally, next to the index
 * updates that change them, and neither a killed process (which can stop between an index store
 * and its count update) nor an OS crash (which keeps whatever dirty pages the kernel had written
 * back, in any order) guarantees that both halves reach the file. The chains and the index are
 * what recovery trusts (durability 'sync' flushes them in order), so everything derived from them
 * is recomputed here, before any merge or allocation:
 *  - a block a chain reaches is in state `chain` (its chain moved past it in memory, but the move
 *    did not reach the file);
 *  - every block's live entries and bytes are what the index points to in it;
 *  - a `merged`, `free` or `cleaning` block outside the chains is `merged` when the index points into
 *    it and `free` otherwise, so a block is never reused while the index still points into it;
 *  - a `chain` block that no chain reaches and that has nothing committed (an allocation that did
 *    not reach its link) is free again; one with committed bytes is left alone and counted as a
 *    stray, since freeing it could only lose data;
 *  - `cleanerOpen` blocks keep their state: the cleaner adopts them (cleaner-planner.ts).
 * Also sets the index's key count. Runs single-threaded, after recoverRegion; O(index + blocks).
 */
export function repairBlockStates(region: Region): BlockRepairReport {
  const g = region.geometry;
  const report: BlockRepairReport = { countsFixed: 0, statesFixed: 0, strays: 0 };
  const chainOf = new Int32Array(g.blockCount).fill(-1);
  for (let rank = 0; rank < g.chainCount; rank++) {
    forEachChainBlock(region, rank, (block) => {
      const inArea =
        block >= g.blocksOffset &&
        block < g.blocksOffset + g.blockCount * g.blockBytes &&
        (block - g.blocksOffset) % g.blockBytes === 0;
      if (inArea) chainOf[blockIndexOf(g, block)] = rank;
    });
  }
  const writer = new IndexWriter(region);
  writer.withLock(() => {
    const counted = countIndexedEntries(region, writer);
    let total = 0;
    for (let i = 0; i < g.blockCount; i++) {
      const block = g.blocksOffset + i * g.blockBytes;
      const entries = counted.entries[i] as number;
      const bytes = counted.bytes[i] as number;
      total += entries;
      if (
        loadU32(region, block + Block.liveEntries) !== entries ||
        loadU32(region, block + Block.liveBytes) !== bytes
      ) {
        storeU32(region, block + Block.liveEntries, entries);
        storeU32(region, block + Block.liveBytes, bytes);
        report.countsFixed++;
      }
      const state = loadU32(region, block + Block.state);
      const next = repairedState(region, block, state, chainOf[i] as number, entries, report);
      if (next !== state) {
        storeU32(region, block + Block.state, next);
        report.statesFixed++;
      }
    }
    region.view.setUint32(g.indexOffset + IndexHeader.entryCount, total, true);
  });
  return report;
}

/** The state block `block` should have (see repairBlockStates); `rank` is -1 outside the chains. */
function repairedState(
  region: Region,
  block: number,
  state: number,
  rank: number,
  indexed: number,
  report: BlockRepairReport,
): number {
  if (rank >= 0) {
    // A block of another chain (or garbage) is for the merge to report as corrupt, not to hide.
    return loadU32(region, block + Block.chainRank) === rank ? BlockState.chain : state;
  }
  if (state === BlockState.cleanerOpen) return state;
  if (state === BlockState.chain) {
    if (loadU32(region, block + Block.commitBytes) > Block.headerBytes) {
      report.strays++;
      return state;
    }
    return indexed > 0 ? BlockState.merged : BlockState.free;
  }
  return indexed > 0 ? BlockState.merged : BlockState.free;
}
