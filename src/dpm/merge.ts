import type { Mutants } from '../config/mutants.js';
import { isDinomoError } from '../errors/index.js';
import { assert } from '../util/assert.js';
import { tryLockWord, unlockWord } from './index-lock.js';
import { IndexWriter } from './index-writer.js';
import { Block, BlockState, Chain, blockMagic, commitSealedBit, lsnOf } from './layout.js';
import { Entry, entryIsValid, entryIsWellFormed, entrySpanAt } from './log-entry.js';
import { noFlush, type RegionFlush } from './region-flush.js';
import { chainRecordOffset, loadU32, loadU64, storeU32, storeU64, type Region } from './region.js';

/** What one merge pass over a chain did; plain data, so it crosses threads as is. */
export interface MergeResult {
  /** Log entries consumed (indexed, or found older than the indexed version). */
  applied: number;
  /** The chain's merge cursor after the pass: every entry with a smaller lsn is in the index. */
  mergedLsn: number;
  /** Region offsets of blocks this pass set free (to go back to the allocator). */
  freedBlocks: number[];
  /** True when everything committed in the chain at the time of the pass is merged. */
  reachedCommit: boolean;
  /** True when another merge held the chain's merge lock, so this pass did nothing. */
  skipped: boolean;
  /** True when the index area had no room: the entry at the cursor stays unmerged. */
  indexFull: boolean;
  /** Why the chain cannot be merged past the cursor (a corrupt committed entry), or null. */
  corruption: string | null;
}

/** `sealed`: merged through a commit word that had the sealed bit, so the block is complete. */
type BlockOutcome = 'done' | 'sealed' | 'budget' | 'stop';

/**
 * Applies up to `maxEntries` committed entries of chain `rank` to the index, in log order, from the
 * chain's merge cursor. Takes the chain's merge lock (returns `skipped` if another merge holds it) and
 * holds the index writer lock for the whole pass. Progress (`Block.mergedBytes`, `Chain.mergedLsn`) is
 * stored only after the index updates it covers, so `mergedLsn` never claims more than the index has.
 * Re-applying an entry is harmless (its version is not newer than itself), so a pass that died
 * between an index store and the progress store merely repeats work.
 *
 * `flush` (durability 'sync') runs after a block's index updates and before its progress is stored,
 * so the file never holds a merge cursor past index updates it lacks: after an OS crash the merge
 * resumes from a cursor whose every earlier entry is in the file's index.
 */
export function mergeChain(
  region: Region,
  rank: number,
  maxEntries: number,
  mutants: Mutants = {},
  flush: RegionFlush = noFlush,
): MergeResult {
  assert(rank >= 0 && rank < region.geometry.chainCount, 'merge of an existing chain rank');
  assert(maxEntries > 0, 'a merge pass may apply at least one entry');
  const chain = chainRecordOffset(region, rank);
  const result: MergeResult = {
    applied: 0,
    mergedLsn: 0,
    freedBlocks: [],
    reachedCommit: false,
    skipped: false,
    indexFull: false,
    corruption: null,
  };
  const lockIndex = (chain + Chain.mergeLock) / 4;
  if (!tryLockWord(region.i32, lockIndex)) {
    result.skipped = true;
    result.mergedLsn = loadU64(region, chain + Chain.mergedLsn);
    return result;
  }
  try {
    const writer = new IndexWriter(region, flush);
    writer.withLock(() =>
      mergeLocked({ region, writer, chain, rank, maxEntries, mutants, flush }, result),
    );
  } finally {
    unlockWord(region.i32, lockIndex);
  }
  result.mergedLsn = loadU64(region, chain + Chain.mergedLsn);
  return result;
}

/** Merges until everything committed is merged (or the chain cannot progress). For handoff and tests. */
export function mergeChainThrough(
  region: Region,
  rank: number,
  batchEntries = 4096,
  mutants: Mutants = {},
  flush: RegionFlush = noFlush,
): MergeResult {
  const total = mergeChain(region, rank, batchEntries, mutants, flush);
  while (!total.reachedCommit && !total.skipped && !total.indexFull && total.corruption === null) {
    const pass = mergeChain(region, rank, batchEntries, mutants, flush);
    total.applied += pass.applied;
    total.freedBlocks.push(...pass.freedBlocks);
    total.mergedLsn = pass.mergedLsn;
    total.reachedCommit = pass.reachedCommit;
    total.skipped = pass.skipped;
    total.indexFull = pass.indexFull;
    total.corruption = pass.corruption;
  }
  return total;
}

/** What one merge pass works on (bundled so the helpers stay short). */
interface MergePass {
  region: Region;
  writer: IndexWriter;
  chain: number;
  rank: number;
  maxEntries: number;
  mutants: Mutants;
  flush: RegionFlush;
}

function mergeLocked(pass: MergePass, result: MergeResult): void {
  const { region, chain, rank } = pass;
  const blocksLimit = region.geometry.blockCount;
  for (let hops = 0; hops <= blocksLimit; hops++) {
    const head = loadU64(region, chain + Chain.headBlock);
    if (head === 0) {
      result.reachedCommit = true;
      return;
    }
    result.corruption = checkBlock(region, head, rank);
    if (result.corruption !== null) return;
    const outcome = mergeBlock(pass, head, result);
    if (outcome === 'budget' || outcome === 'stop') return;
    // `sealed` comes from the same atomic commit-word read as the offset merged through, so a block
    // sealed after that read is not retired with entries it committed meanwhile.
    const next = loadU64(region, head + Block.next);
    if (outcome !== 'sealed' || next === 0) {
      result.reachedCommit = true;
      return;
    }
    result.corruption = checkBlock(region, next, rank);
    if (result.corruption !== null) return;
    retireHead(region, chain, head, next, result.freedBlocks);
  }
  result.corruption = `chain ${rank} has more blocks than the region`;
}

/**
 * Applies the committed, unmerged entries of block `head`, within the pass budget. The commit word is
 * read once, atomically: entries below its commit offset are complete, so one that fails its
 * checksum is corruption, not a torn write, and the merge stops rather than apply garbage.
 */
function mergeBlock(pass: MergePass, head: number, result: MergeResult): BlockOutcome {
  const { region, writer, chain, maxEntries, mutants, flush } = pass;
  const { bytes, view, geometry } = region;
  const commit = BigInt.asUintN(64, Atomics.load(region.i64, (head + Block.commitWord) / 8));
  const commitBytes = Number(commit & 0xffff_ffffn);
  const sealed = (Number(commit >> 32n) & commitSealedBit) !== 0;
  const end = Math.max(commitBytes, Block.headerBytes);
  let cursor = Math.max(loadU32(region, head + Block.mergedBytes), Block.headerBytes);
  if (end > geometry.blockBytes || cursor > end) {
    result.corruption = `block ${head}: commit offset ${commitBytes} / merged offset ${cursor} out of range`;
    return 'stop';
  }
  const generation = loadU32(region, head + Block.generation);
  let outcome: BlockOutcome = sealed ? 'sealed' : 'done';
  let indexChanged = false;
  while (cursor < end) {
    if (result.applied >= maxEntries) {
      outcome = 'budget';
      break;
    }
    const at = head + cursor;
    const valid =
      mutants.acceptTornEntries === true
        ? entryIsWellFormed(view, at, head + end)
        : entryIsValid(bytes, view, at, head + end);
    if (!valid) {
      result.corruption = `block ${head}: the committed entry at offset ${cursor} fails its checksum`;
      outcome = 'stop';
      break;
    }
    if (view.getUint32(at + Entry.generation, true) !== generation) {
      result.corruption = `block ${head}: the entry at offset ${cursor} has another block generation`;
      outcome = 'stop';
      break;
    }
    try {
      const applied = writer.apply(at, result.freedBlocks, mutants.mergeByArrival === true);
      if (applied !== 'stale' && applied !== 'absent') indexChanged = true;
    } catch (err) {
      if (!isDinomoError(err) || err.code !== 'REGION_FULL') throw err;
      result.indexFull = true;
      outcome = 'stop';
      break;
    }
    cursor += entrySpanAt(view, at);
    result.applied++;
  }
  // The index updates reach the file before the progress that claims them (see mergeChain).
  if (indexChanged) flush();
  storeU32(region, head + Block.mergedBytes, cursor);
  storeU64(region, chain + Chain.mergedLsn, lsnOf(loadU32(region, head + Block.blockSeq), cursor));
  return outcome;
}

/** Moves the chain's head past a sealed, fully merged block; frees it if nothing in it is live. */
function retireHead(
  region: Region,
  chain: number,
  head: number,
  next: number,
  freed: number[],
): void {
  storeU32(region, head + Block.state, BlockState.merged);
  storeU64(region, chain + Chain.headBlock, next);
  storeU64(
    region,
    chain + Chain.mergedLsn,
    lsnOf(loadU32(region, next + Block.blockSeq), Block.headerBytes),
  );
  Atomics.sub(region.i32, (chain + Chain.blocksInChain) / 4, 1);
  // Both this check and the index writer's live-count decrement run under the index writer lock, so
  // exactly one of them sees (merged, 0 live) and frees the block.
  if (
    loadU32(region, head + Block.liveEntries) === 0 &&
    loadU32(region, head + Block.pinned) === 0
  ) {
    storeU32(region, head + Block.state, BlockState.free);
    freed.push(head);
  }
}

/** Null when `block` is a block of chain `rank` in state `chain`; otherwise what is wrong. */
function checkBlock(region: Region, block: number, rank: number): string | null {
  const g = region.geometry;
  const inRange =
    block >= g.blocksOffset &&
    block < g.blocksOffset + g.blockCount * g.blockBytes &&
    (block - g.blocksOffset) % g.blockBytes === 0;
  if (!inRange) return `chain ${rank} links to ${block}, which is not a block offset`;
  const ok =
    loadU32(region, block + Block.magic) === blockMagic &&
    loadU32(region, block + Block.state) === BlockState.chain &&
    loadU32(region, block + Block.chainRank) === rank;
  return ok ? null : `block ${block} is not a live block of chain ${rank}`;
}
