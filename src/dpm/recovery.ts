import type { Mutants } from '../config/mutants.js';
import { Block, Chain, IndexHeader, commitSealedBit, lsnOf } from './layout.js';
import { entryBytes, entryIsValid, Entry } from './log-entry.js';
import { chainRecordOffset, loadU32, loadU64, type Region } from './region.js';

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
  let endLsn = loadU64(region, chainRecordOffset(region, rank) + Chain.mergedLsn);
  forEachChainBlock(region, rank, (block) => {
    report.blocksScanned++;
    if (mutants.acceptTornEntries !== true) truncateTornTail(region, block, report);
    if (sealBlock(region, block)) report.blocksSealed++;
    const commit = BigInt.asUintN(64, Atomics.load(region.i64, (block + Block.commitWord) / 8));
    const end = Math.max(Number(commit & 0xffff_ffffn), Block.headerBytes);
    endLsn = Math.max(endLsn, lsnOf(loadU32(region, block + Block.blockSeq), end));
  });
  const { tornBlocks, tornBytes, blocksSealed } = report;
  return { tornBlocks, tornBytes, blocksSealed, endLsn };
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
    at += entryBytes(
      view.getUint16(entry + Entry.keyLen, true),
      view.getUint32(entry + Entry.valueLen, true),
    );
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
