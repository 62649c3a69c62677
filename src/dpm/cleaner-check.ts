import { IndexWriter } from './index-writer.js';
import { Block, BlockState } from './layout.js';
import { entrySpanAt } from './log-entry.js';
import { blockIndexOf, loadU32, type Region } from './region.js';

/** A block whose header counts disagree with the index. */
export interface LiveCountMismatch {
  block: number;
  state: number;
  liveEntries: number;
  expectedEntries: number;
  liveBytes: number;
  expectedBytes: number;
}

/**
 * Recomputes every block's live entries and live bytes from the index (each slot points at one live
 * entry) and compares them with the counts in the block headers, which merges and the cleaner keep
 * incrementally. Also reports a free block that a slot points into. Takes the index writer lock, so
 * the index and the counts are not changing meanwhile. For tests and consistency checks; O(index +
 * blocks).
 */
export function checkLiveCounts(region: Region): LiveCountMismatch[] {
  const g = region.geometry;
  const mismatches: LiveCountMismatch[] = [];
  const writer = new IndexWriter(region);
  writer.withLock(() => {
    const { entries, bytes } = countIndexedEntries(region, writer);
    for (let i = 0; i < g.blockCount; i++) {
      const block = g.blocksOffset + i * g.blockBytes;
      const state = loadU32(region, block + Block.state);
      const liveEntries =
        state === BlockState.free ? 0 : loadU32(region, block + Block.liveEntries);
      const liveBytes = state === BlockState.free ? 0 : loadU32(region, block + Block.liveBytes);
      const expectedEntries = entries[i] as number;
      const expectedBytes = bytes[i] as number;
      if (liveEntries !== expectedEntries || liveBytes !== expectedBytes) {
        mismatches.push({ block, state, liveEntries, expectedEntries, liveBytes, expectedBytes });
      }
    }
  });
  return mismatches;
}

/** Live entries and bytes per block index, as the index says: one per slot. */
export interface IndexedCounts {
  entries: Uint32Array;
  bytes: Float64Array;
}

/** Counts what the index points to in each block; the caller holds `writer`'s lock. */
export function countIndexedEntries(region: Region, writer: IndexWriter): IndexedCounts {
  const g = region.geometry;
  const entries = new Uint32Array(g.blockCount);
  const bytes = new Float64Array(g.blockCount);
  writer.forEachIndexed((entryOffset) => {
    const i = blockIndexOf(g, entryOffset);
    entries[i] = (entries[i] as number) + 1;
    bytes[i] = (bytes[i] as number) + entrySpanAt(region.view, entryOffset);
  });
  return { entries, bytes };
}
