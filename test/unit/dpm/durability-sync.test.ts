/**
 * Where the DPM flushes a file-backed region with durability 'sync' (docs/architecture.md,
 * "Durability"), and what recovery recomputes because no flush can order it. Each test passes a spy
 * as the flush barrier and checks what the region held at the moment of each flush: what must be in
 * the file already, and what must not have been written yet.
 */
import { describe, expect, it } from 'vitest';
import { hashKey } from '../../../src/util/hash.js';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { checkLiveCounts } from '../../../src/dpm/cleaner-check.js';
import { cleanBlocks } from '../../../src/dpm/cleaner.js';
import { DpmManagerCore } from '../../../src/dpm/dpm-manager-core.js';
import { growTable } from '../../../src/dpm/index-growth.js';
import { IndexReader } from '../../../src/dpm/index-reader.js';
import { IndexWriter } from '../../../src/dpm/index-writer.js';
import {
  newTableDescriptor,
  unpackDescriptor,
  type TableDescriptor,
} from '../../../src/dpm/index-format.js';
import { Block, BlockState, Chain, IndexBucket, IndexHeader } from '../../../src/dpm/layout.js';
import { mergeChain, mergeChainThrough } from '../../../src/dpm/merge.js';
import { repairBlockStates } from '../../../src/dpm/recovery.js';
import { storeU32, type Region } from '../../../src/dpm/region.js';
import { FakeKn, blockField, chainField, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

/** A flush barrier that runs `probe` at each call, so a test can see the region at that moment. */
function spy(probe: () => void = () => {}): { flush: () => void; calls: () => number } {
  let calls = 0;
  return {
    flush: () => {
      calls++;
      probe();
    },
    calls: () => calls,
  };
}

function indexed(region: Region, key: string): number | null {
  const reader = new IndexReader(dpmFabric(region), region.geometry);
  const k = enc.encode(key);
  return reader.lookup(k, hashKey(k)) ? reader.entryOffset : null;
}

function descriptorOf(region: Region): TableDescriptor {
  const word = region.view.getBigInt64(region.geometry.indexOffset + IndexHeader.descriptor, true);
  return unpackDescriptor(word, newTableDescriptor());
}

describe('merge with a flush barrier', () => {
  it('flushes the index updates of a pass before storing its progress, once per block', () => {
    const region = makeRegion({ blocks: 4 });
    const allocator = new BlockAllocator(region);
    const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
    for (let i = 0; i < 20; i++) kn.put(`k${i}`, `v${i}`, 1, i + 1);
    kn.commit();
    const before = chainField(region, 0, Chain.mergedLsn);
    const seen: Array<{ mergedLsn: number; mergedBytes: number; indexed: boolean }> = [];
    const barrier = spy(() =>
      seen.push({
        mergedLsn: chainField(region, 0, Chain.mergedLsn),
        mergedBytes: blockField(region, kn.block, Block.mergedBytes),
        indexed: indexed(region, 'k19') !== null,
      }),
    );
    const result = mergeChain(region, 0, 1000, {}, barrier.flush);
    expect(result.applied).toBe(20);
    // At the flush the index had every key and the progress was still the old one.
    expect(seen).toEqual([{ mergedLsn: before, mergedBytes: 0, indexed: true }]);
    expect(chainField(region, 0, Chain.mergedLsn)).toBeGreaterThan(before);

    // Nothing new, or only entries older than the indexed ones: no index change, no flush.
    expect(mergeChain(region, 0, 1000, {}, barrier.flush).applied).toBe(0);
    kn.put('k3', 'older', 0, 1);
    kn.commit();
    expect(mergeChain(region, 0, 1000, {}, barrier.flush).applied).toBe(1);
    expect(barrier.calls()).toBe(1);
  });

  it('flushes a new overflow bucket, and the bump offset that took it, before linking it', () => {
    const region = makeRegion({ blocks: 4 });
    const allocator = new BlockAllocator(region);
    const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
    const table = descriptorOf(region);
    // Seven keys of one bucket: the seventh needs an overflow bucket (six slots per bucket).
    const home = (key: string): number => hashKey(enc.encode(key)) & (table.bucketCount - 1);
    const keys: string[] = [];
    for (let i = 0; keys.length < IndexBucket.slotCount + 1; i++) {
      if (home(`c${i}`) === 0) keys.push(`c${i}`);
    }
    keys.forEach((key, i) => kn.put(key, 'v', 1, i + 1));
    kn.commit();
    const bucket = table.bucketsOffset;
    const seen: Array<{ link: bigint; bump: number }> = [];
    const barrier = spy(() =>
      seen.push({
        link: region.view.getBigUint64(bucket + IndexBucket.overflow, true),
        bump: Number(
          region.view.getBigUint64(region.geometry.indexOffset + IndexHeader.bumpOffset, true),
        ),
      }),
    );
    const bumpBefore = Number(
      region.view.getBigUint64(region.geometry.indexOffset + IndexHeader.bumpOffset, true),
    );
    mergeChain(region, 0, 1000, {}, barrier.flush);
    // First the overflow bucket (not linked yet, bump already past it), then the pass's progress.
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({ link: 0n, bump: bumpBefore + IndexBucket.bytes });
    expect(region.view.getBigUint64(bucket + IndexBucket.overflow, true)).toBe(BigInt(bumpBefore));
    for (const key of keys) expect(indexed(region, key)).not.toBeNull();
  });

  it('growth flushes the new table before publishing it, and the descriptor before retiring', () => {
    const region = makeRegion({ blocks: 4 });
    const allocator = new BlockAllocator(region);
    const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
    for (let i = 0; i < 50; i++) kn.put(`g${i}`, 'v', 1, i + 1);
    kn.commit();
    mergeChainThrough(region, 0);
    const old = descriptorOf(region);
    const oldBucketVersion = (): number =>
      region.view.getUint32(old.bucketsOffset + IndexBucket.version, true);
    const seen: Array<{ version: number; oldRetired: boolean }> = [];
    const barrier = spy(() =>
      seen.push({
        version: descriptorOf(region).version,
        oldRetired: oldBucketVersion() === IndexBucket.retiredVersion,
      }),
    );
    const writer = new IndexWriter(region);
    const grown = writer.withLock(() => growTable(region, old, barrier.flush));
    expect(grown).not.toBeNull();
    expect(seen).toEqual([
      { version: old.version, oldRetired: false },
      { version: old.version + 1, oldRetired: false },
    ]);
    expect(oldBucketVersion()).toBe(IndexBucket.retiredVersion);
    for (let i = 0; i < 50; i++) expect(indexed(region, `g${i}`)).not.toBeNull();
  });
});

describe('block allocation with a flush barrier', () => {
  it('flushes what freed a block before reuse, the header before the link, the link before handing out', () => {
    const region = makeRegion({ blocks: 4 });
    const seen: string[] = [];
    let probe = (): void => {};
    const barrier = spy(() => probe());
    const allocator = new BlockAllocator(region, { flush: barrier.flush });
    const chain = (field: number): number => chainField(region, 0, field);
    probe = () => seen.push(`tail=${chain(Chain.tailBlock)}`);
    const first = allocator.allocate(0);
    // The allocator starts not knowing whether its free states were flushed: it flushes first.
    expect(seen).toEqual(['tail=0', 'tail=0', `tail=${first}`]);

    seen.length = 0;
    probe = () =>
      seen.push(`state=${blockField(region, second, Block.state)} next=${nextOf(first)}`);
    const nextOf = (block: number): number =>
      Number(region.view.getBigUint64(block + Block.next, true));
    const second = region.geometry.blocksOffset + region.geometry.blockBytes;
    expect(allocator.allocate(0)).toBe(second);
    // No block was freed since the last flush: two flushes, header (stamped, unlinked), then link.
    expect(seen).toEqual([
      `state=${BlockState.chain} next=0`,
      `state=${BlockState.chain} next=${second}`,
    ]);

    // A freed block makes the next reuse flush first; a cleaner block needs no flush after its header.
    storeU32(region, first + Block.state, BlockState.free);
    allocator.release([first]);
    const calls = barrier.calls();
    allocator.allocateCleanerBlock(0);
    expect(barrier.calls()).toBe(calls + 1);
    allocator.allocateCleanerBlock(1);
    expect(barrier.calls()).toBe(calls + 1);
  });

  it('the manager flushes a failover (fence, cut, seal) before answering it', () => {
    const region = makeRegion({ blocks: 4 });
    const barrier = spy();
    const core = new DpmManagerCore<number>(region, { maxWaiters: 8, flush: barrier.flush });
    core.alloc(0);
    const calls = barrier.calls();
    core.prepareFailover(0, 0);
    expect(barrier.calls()).toBe(calls + 1);
  });
});

describe('cleaning with a flush barrier', () => {
  it('flushes the copies and the destination commit word before repointing the index', () => {
    const region = makeRegion({ blocks: 6, indexBytes: 256 * 1024 });
    const allocator = new BlockAllocator(region);
    const alloc = (rank: number): number => allocator.allocate(rank);
    let kn = new FakeKn(region, alloc, 0);
    for (let i = 0; i < 40; i++) kn.put(`k${i}`, `v${i}`.padEnd(100, '.'), 1, i + 1);
    const victim = kn.block;
    kn.commit();
    kn.seal();
    kn = new FakeKn(region, alloc, 0);
    for (let i = 0; i < 40; i += 2) kn.put(`k${i}`, 'newer', 1, 100 + i);
    kn.commit();
    mergeChainThrough(region, 0);
    expect(blockField(region, victim, Block.state)).toBe(BlockState.merged);
    const original = indexed(region, 'k1');
    const dest = allocator.allocateCleanerBlock(0);
    const seen: Array<{ k1: number | null; destCommit: number }> = [];
    const barrier = spy(() =>
      seen.push({
        k1: indexed(region, 'k1'),
        destCommit: blockField(region, dest, Block.commitBytes),
      }),
    );
    const result = cleanBlocks(
      region,
      {
        destBlock: dest,
        victims: [
          { block: victim, generation: blockField(region, victim, Block.generation), cursor: 0 },
        ],
        batchEntries: 1000,
      },
      {},
      barrier.flush,
    );
    expect(result.entriesCopied).toBe(20);
    // One batch: at its flush the copies were committed in the destination, the index unchanged.
    expect(seen).toEqual([{ k1: original, destCommit: expect.any(Number) as number }]);
    expect(seen[0]?.destCommit).toBeGreaterThan(Block.headerBytes);
    expect(indexed(region, 'k1')).toBeGreaterThan(dest);
    expect(checkLiveCounts(region)).toEqual([]);
  });
});

describe('repairBlockStates', () => {
  /** Chain 0 with a merged, retired block (`old`, half live) and a chain block (`current`). */
  function retiredSetup(): { region: Region; old: number; current: number; spare: number } {
    const region = makeRegion({ blocks: 5 });
    const allocator = new BlockAllocator(region);
    const alloc = (rank: number): number => allocator.allocate(rank);
    let kn = new FakeKn(region, alloc, 0);
    for (let i = 0; i < 10; i++) kn.put(`r${i}`, `v${i}`, 1, i + 1);
    const old = kn.block;
    kn.commit();
    kn.seal();
    kn = new FakeKn(region, alloc, 0);
    for (let i = 0; i < 10; i += 2) kn.put(`r${i}`, 'newer', 1, 100 + i);
    kn.commit();
    mergeChainThrough(region, 0);
    const spare = region.geometry.blocksOffset + 4 * region.geometry.blockBytes;
    return { region, old, current: kn.block, spare };
  }

  it('changes nothing in a consistent region', () => {
    const { region, old, current } = retiredSetup();
    expect(blockField(region, old, Block.state)).toBe(BlockState.merged);
    expect(blockField(region, current, Block.state)).toBe(BlockState.chain);
    expect(repairBlockStates(region)).toEqual({ countsFixed: 0, statesFixed: 0, strays: 0 });
  });

  it('recomputes live counts, and never leaves a block free while the index points into it', () => {
    const { region, old, current, spare } = retiredSetup();
    // An OS crash kept the block's free state and a count update, but not the index updates.
    storeU32(region, old + Block.state, BlockState.free);
    storeU32(region, old + Block.liveEntries, 0);
    storeU32(region, current + Block.liveEntries, 99);
    expect(repairBlockStates(region)).toEqual({ countsFixed: 2, statesFixed: 1, strays: 0 });
    expect(blockField(region, old, Block.state)).toBe(BlockState.merged);
    expect(checkLiveCounts(region)).toEqual([]);
    // And the other way round: a merged block nothing points into is free, and a victim a dead
    // cleaning task had claimed is merged again.
    storeU32(region, spare + Block.state, BlockState.merged);
    storeU32(region, old + Block.state, BlockState.cleaning);
    expect(repairBlockStates(region)).toEqual({ countsFixed: 0, statesFixed: 2, strays: 0 });
    expect(blockField(region, spare, Block.state)).toBe(BlockState.free);
    expect(blockField(region, old, Block.state)).toBe(BlockState.merged);
  });

  it('puts a block the chain still reaches back into the chain, and frees an unlinked allocation', () => {
    const { region, current, spare } = retiredSetup();
    // The chain moved past `current` in memory, but only its state reached the file.
    storeU32(region, current + Block.state, BlockState.merged);
    // An allocation stamped `spare` but its link never reached the file; nothing is committed in it.
    storeU32(region, spare + Block.state, BlockState.chain);
    const report = repairBlockStates(region);
    expect(report).toEqual({ countsFixed: 0, statesFixed: 2, strays: 0 });
    expect(blockField(region, current, Block.state)).toBe(BlockState.chain);
    expect(blockField(region, spare, Block.state)).toBe(BlockState.free);
    // An unlinked chain block with committed bytes is left alone: freeing it could lose data.
    storeU32(region, spare + Block.state, BlockState.chain);
    storeU32(region, spare + Block.commitBytes, Block.headerBytes + 64);
    expect(repairBlockStates(region)).toEqual({ countsFixed: 0, statesFixed: 0, strays: 1 });
  });
});
