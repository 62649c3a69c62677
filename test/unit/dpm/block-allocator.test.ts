import { describe, expect, it } from 'vitest';
import { isDinomoError } from '../../../src/errors/index.js';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { Block, BlockState, Chain, blockMagic, lsnOf } from '../../../src/dpm/layout.js';
import { blockOffset, loadU64, storeU32 } from '../../../src/dpm/region.js';
import { blockField, chainField, makeRegion } from './dpm-test-kit.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isDinomoError(err) ? err.code : String(err);
  }
  return 'no error';
}

describe('BlockAllocator', () => {
  it('links allocated blocks as the chain tail and initialises the merge cursor', () => {
    const region = makeRegion({ chains: 2, blocks: 5 });
    const allocator = new BlockAllocator(region);
    expect(allocator.stats()).toEqual({ blocksTotal: 5, blocksFree: 5, bytesUsed: 0 });
    const a = allocator.allocate(1);
    expect(chainField(region, 1, Chain.headBlock)).toBe(a);
    expect(chainField(region, 1, Chain.tailBlock)).toBe(a);
    expect(chainField(region, 1, Chain.mergedLsn)).toBe(lsnOf(0, Block.headerBytes));
    expect(chainField(region, 1, Chain.blocksInChain)).toBe(1);
    expect(blockField(region, a, Block.magic)).toBe(blockMagic);
    expect(blockField(region, a, Block.state)).toBe(BlockState.chain);
    expect(blockField(region, a, Block.chainRank)).toBe(1);
    expect(blockField(region, a, Block.blockSeq)).toBe(0);
    expect(blockField(region, a, Block.generation)).toBe(1);
    const b = allocator.allocate(1);
    expect(loadU64(region, a + Block.next)).toBe(b);
    expect(loadU64(region, b + Block.next)).toBe(0);
    expect(chainField(region, 1, Chain.headBlock)).toBe(a);
    expect(chainField(region, 1, Chain.tailBlock)).toBe(b);
    expect(chainField(region, 1, Chain.blocksInChain)).toBe(2);
    expect(chainField(region, 1, Chain.nextBlockSeq)).toBe(2);
    expect(blockField(region, b, Block.blockSeq)).toBe(1);
    expect(chainField(region, 0, Chain.headBlock)).toBe(0);
    expect(allocator.stats()).toEqual({
      blocksTotal: 5,
      blocksFree: 3,
      bytesUsed: 2 * region.geometry.blockBytes,
    });
  });

  it('reports REGION_FULL when no block is free and INVALID_OPTION for a bad rank', () => {
    const region = makeRegion({ chains: 1, blocks: 2 });
    const allocator = new BlockAllocator(region);
    allocator.allocate(0);
    allocator.allocate(0);
    expect(codeOf(() => allocator.allocate(0))).toBe('REGION_FULL');
    expect(codeOf(() => allocator.allocate(1))).toBe('INVALID_OPTION');
    expect(codeOf(() => allocator.allocate(-1))).toBe('INVALID_OPTION');
  });

  it('reuses released blocks in FIFO order, and rebuilds its free list from the headers', () => {
    const region = makeRegion({ chains: 1, blocks: 3 });
    const allocator = new BlockAllocator(region);
    const first = allocator.allocate(0);
    // Pretend a merge freed the block.
    storeU32(region, first + Block.state, BlockState.free);
    allocator.release([first]);
    expect(allocator.allocate(0)).toBe(blockOffset(region, 1));
    expect(allocator.allocate(0)).toBe(blockOffset(region, 2));
    expect(allocator.allocate(0)).toBe(first);
    expect(blockField(region, first, Block.generation)).toBe(2);
    expect(() => allocator.release([blockOffset(region, 1)])).toThrow(/released blocks are free/);
    const rebuilt = new BlockAllocator(region);
    expect(rebuilt.stats().blocksFree).toBe(0);
  });
});
