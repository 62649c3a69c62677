import { describe, expect, it } from 'vitest';
import { isDinomoError } from '../../../src/errors/index.js';
import { hashKey } from '../../../src/util/hash.js';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { checkLiveCounts } from '../../../src/dpm/cleaner-check.js';
import { CleanerPlanner } from '../../../src/dpm/cleaner-planner.js';
import { cleanBlocks } from '../../../src/dpm/cleaner.js';
import { DpmManagerCore } from '../../../src/dpm/dpm-manager-core.js';
import { DpmManagerService } from '../../../src/dpm/dpm-manager-service.js';
import type { DpmToKnMessage } from '../../../src/dpm/dpm-protocol.js';
import { IndexReader } from '../../../src/dpm/index-reader.js';
import { Block, BlockState } from '../../../src/dpm/layout.js';
import { mergeChain, mergeChainThrough } from '../../../src/dpm/merge.js';
import type { Region } from '../../../src/dpm/region.js';
import { FakeKn, blockField, dec, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

/** A seeded xorshift32 in [0, 1): tests stay deterministic without Math.random. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function drainMerges(region: Region, core: DpmManagerCore<string>): void {
  for (let round = 0; round < 1000; round++) {
    const ranks = core.chainsNeedingMerge();
    if (ranks.length === 0) return;
    for (const rank of ranks) {
      core.startMerge(rank);
      core.onMergeResult(rank, mergeChain(region, rank, 512));
    }
  }
  throw new Error('merges did not converge');
}

function drainCleaning(region: Region, core: DpmManagerCore<string>): void {
  for (let tasks = 0; tasks < 1000; tasks++) {
    const request = core.cleaner.nextTask();
    if (request === null) return;
    core.cleaner.onResult(request, cleanBlocks(region, request));
  }
  throw new Error('cleaning did not converge');
}

const value = (key: number, version: number): string => `${key}@${version}`.padEnd(1000, '.');

interface UpdateRun {
  bytesWritten: number;
  maxBlocksUsed: number;
  core: DpmManagerCore<string>;
  region: Region;
  latest: Map<number, number>;
}

/**
 * Loads `keys` keys, then updates them with a skewed (roughly Zipf-like) choice through merges and,
 * when `clean`, cleaning, until `bytesTarget` bytes of log were written.
 */
function runUpdates(keys: number, bytesTarget: number, clean: boolean): UpdateRun {
  const region = makeRegion({ blocks: 12, indexBytes: 512 * 1024 });
  const core = new DpmManagerCore<string>(region, { maxWaiters: 16 });
  const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 0);
  const random = rng(7);
  const latest = new Map<number, number>();
  let seq = 0;
  let bytesWritten = 0;
  let maxBlocksUsed = 0;
  for (let i = 0; bytesWritten < bytesTarget; i++) {
    const key = i < keys ? i : Math.floor(keys * random() ** 3);
    kn.put(`key${key}`, value(key, ++seq), 1, seq);
    latest.set(key, seq);
    bytesWritten += 1040;
    if (i % 256 === 255) {
      kn.commit();
      drainMerges(region, core);
      if (clean) drainCleaning(region, core);
      const space = core.stats().space;
      maxBlocksUsed = Math.max(maxBlocksUsed, space.blocksTotal - space.blocksFree);
    }
  }
  kn.commit();
  drainMerges(region, core);
  return { bytesWritten, maxBlocksUsed, core, region, latest };
}

describe('cleaning keeps space bounded', () => {
  const regionBytes = 12 * 2 * 1024 * 1024;

  it('updates a fixed key set many times the region size without REGION_FULL', () => {
    const run = runUpdates(1500, 8 * regionBytes, true);
    const { core, region } = run;
    expect(run.bytesWritten).toBeGreaterThanOrEqual(8 * regionBytes);
    // 1500 live values are ~1.5 MiB (three quarters of a block): with the chain's head and tail
    // and the cleaner's open block, a handful of the 12 blocks are ever in use.
    expect(run.maxBlocksUsed).toBeLessThanOrEqual(6);
    const stats = core.stats().cleaning;
    expect(stats.blocksCleaned).toBeGreaterThan(20);
    expect(stats.entriesCopied).toBeGreaterThan(0);
    expect(stats.tasksFailed).toBe(0);
    expect(checkLiveCounts(region)).toEqual([]);
    const reader = new IndexReader(dpmFabric(region), region.geometry);
    for (const [key, seq] of run.latest) {
      const k = enc.encode(`key${key}`);
      expect(reader.lookup(k, hashKey(k))).toBe(true);
      expect(dec.decode(reader.value)).toBe(value(key, seq));
    }
  });

  it('runs out of space on the same workload without cleaning', () => {
    let code = 'no error';
    try {
      runUpdates(1500, 8 * regionBytes, false);
    } catch (err) {
      code = isDinomoError(err) ? err.code : String(err);
    }
    expect(code).toBe('REGION_FULL');
  });
});

describe('CleanerPlanner', () => {
  /** Fills one block with `unique` new keys and then overwrites the first `dead` of them. */
  function fillBlock(kn: FakeKn, prefix: string, unique: number, dead: number): number {
    const block = kn.block;
    let seq = 0;
    for (let i = 0; i < unique; i++) kn.put(`${prefix}${i}`, value(i, 0), 1, ++seq);
    for (let i = 0; i < dead; i++) kn.put(`${prefix}${i}`, value(i, 1), 1, ++seq);
    return block;
  }

  it('leaves a mostly live block alone until free blocks fall below the low-water mark', () => {
    const region = makeRegion({ blocks: 6, indexBytes: 512 * 1024 });
    const allocator = new BlockAllocator(region, { cleanerReserve: 1 });
    const planner = new CleanerPlanner(region, allocator, { lowWaterBlocks: 3 });
    const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
    kn.commit();
    const victim = fillBlock(kn, 'a', 1400, 600); // 1400 of 2000 entries stay live: 70%
    kn.commit();
    kn.seal();
    allocator.allocate(0); // the KN moved on to its next block
    allocator.release(mergeChainThrough(region, 0).freedBlocks);
    expect(blockField(region, victim, Block.state)).toBe(BlockState.merged);
    expect(allocator.freeCount).toBe(4);
    expect(planner.nextTask()).toBeNull(); // 70% live is above the 50% threshold
    allocator.allocate(0);
    allocator.allocate(0);
    expect(planner.underPressure).toBe(true);
    planner.markDirty();
    const request = planner.nextTask();
    expect(request?.victims.map((v) => v.block)).toEqual([victim]);
    if (request === null) return;
    // The destination came out of the cleaner reserve, which KN chains may not take.
    expect(allocator.hasBlockForChain()).toBe(false);
    planner.onResult(request, cleanBlocks(region, request));
    expect(blockField(region, victim, Block.state)).toBe(BlockState.free);
    expect(allocator.hasBlockForChain()).toBe(true);
    expect(planner.stats()).toMatchObject({ blocksCleaned: 1, entriesCopied: 1400, destBlocks: 1 });
    expect(checkLiveCounts(region)).toEqual([]);
  });
});

describe('DpmManagerService allocation under space pressure', () => {
  function service(region: Region): DpmManagerService {
    return new DpmManagerService(region, {
      runMerge: (rank, maxEntries) => Promise.resolve(mergeChain(region, rank, maxEntries)),
      runClean: (request) => Promise.resolve(cleanBlocks(region, request)),
      maxWaiters: 8,
      mergeBatchEntries: 4096,
      maxConcurrentMerges: 1,
      // Clean only when a KN is waiting for a block, so the test controls when it happens.
      cleaner: { liveThreshold: 0, lowWaterBlocks: 0 },
    });
  }

  /**
   * Fills every block KN chains may take (2001 entries of 1048 bytes fill a 2 MiB block); each
   * block keeps `liveKeys` live entries, the rest are overwritten versions of one hot key.
   */
  function fillRegion(svc: DpmManagerService, region: Region, liveKeys: number): void {
    const core = svc.core;
    const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 0);
    let seq = 0;
    for (let b = 0; b === 0 || core.allocator.hasBlockForChain(); b++) {
      for (let i = 0; i < 2001; i++) {
        const key = i < liveKeys ? `cold${b}-${String(i).padStart(4, '0')}` : 'hot0000000';
        kn.put(key, value(i, b), 1, ++seq);
      }
    }
    kn.commit();
    core.allocator.release(mergeChainThrough(region, 0).freedBlocks);
  }

  async function settle(): Promise<void> {
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  it('makes an allocation wait for cleaning instead of failing it', async () => {
    const region = makeRegion({ blocks: 6, indexBytes: 512 * 1024 });
    const svc = service(region);
    fillRegion(svc, region, 1);
    expect(svc.core.allocator.hasBlockForChain()).toBe(false);
    const replies: DpmToKnMessage[] = [];
    svc.onKnMessage(
      { postMessage: (m: DpmToKnMessage) => replies.push(m) },
      {
        type: 'alloc',
        id: 7,
        rank: 0,
      },
    );
    await settle();
    expect(replies).toMatchObject([{ type: 'alloc-ok', id: 7 }]);
    expect(svc.core.stats().cleaning.blocksCleaned).toBeGreaterThan(0);
    expect(checkLiveCounts(region)).toEqual([]);
    await svc.stop();
  });

  it('fails an allocation with REGION_FULL when cleaning cannot free a block', async () => {
    const region = makeRegion({ blocks: 6, indexBytes: 512 * 1024 });
    const svc = service(region);
    fillRegion(svc, region, 2001);
    const replies: DpmToKnMessage[] = [];
    svc.onKnMessage(
      { postMessage: (m: DpmToKnMessage) => replies.push(m) },
      {
        type: 'alloc',
        id: 8,
        rank: 0,
      },
    );
    await settle();
    expect(replies).toMatchObject([{ type: 'error', id: 8, code: 'REGION_FULL' }]);
    await svc.stop();
  });
});

describe('CleanerPlanner failures and restarts', () => {
  function mergedBlockWithLiveEntries(region: Region, allocator: BlockAllocator): number {
    const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
    for (let i = 0; i < 10; i++) kn.put(`k${i}`, 'v', 1, i + 1);
    kn.commit();
    kn.seal();
    const block = kn.block;
    allocator.allocate(0);
    allocator.release(mergeChainThrough(region, 0).freedBlocks);
    expect(blockField(region, block, Block.state)).toBe(BlockState.merged);
    return block;
  }

  it('lets go of the victims of a task that failed', () => {
    const region = makeRegion({ blocks: 6 });
    const allocator = new BlockAllocator(region, { cleanerReserve: 1 });
    const planner = new CleanerPlanner(region, allocator);
    const victim = mergedBlockWithLiveEntries(region, allocator);
    const request = planner.nextTask();
    expect(request?.victims.map((v) => v.block)).toEqual([victim]);
    if (request === null) return;
    // The task died after claiming its victim.
    region.view.setUint32(victim + Block.state, BlockState.cleaning, true);
    planner.onFailed(request, 'the pool thread died');
    expect(blockField(region, victim, Block.state)).toBe(BlockState.merged);
    expect(planner.stats()).toMatchObject({ tasksFailed: 1, lastError: 'the pool thread died' });
    planner.markDirty();
    const retry = planner.nextTask();
    expect(retry?.destBlock).not.toBe(request.destBlock); // a failed task's destination is dropped
    if (retry === null) return;
    planner.onResult(retry, cleanBlocks(region, retry));
    expect(blockField(region, victim, Block.state)).toBe(BlockState.free);
  });

  it('adopts the open block and releases the claimed victims a previous manager left', () => {
    const region = makeRegion({ blocks: 6 });
    const first = new BlockAllocator(region);
    const victim = mergedBlockWithLiveEntries(region, first);
    const open = first.allocateCleanerBlock(0);
    region.view.setUint32(victim + Block.state, BlockState.cleaning, true);
    const allocator = new BlockAllocator(region, { cleanerReserve: 1 });
    const planner = new CleanerPlanner(region, allocator);
    expect(blockField(region, victim, Block.state)).toBe(BlockState.merged);
    const request = planner.nextTask();
    expect(request?.destBlock).toBe(open);
    expect(request?.victims.map((v) => v.block)).toEqual([victim]);
  });
});
