import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDinomoError } from '../../../src/errors/index.js';
import { hashKey } from '../../../src/util/hash.js';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { checkLiveCounts } from '../../../src/dpm/cleaner-check.js';
import { CleanerPlanner } from '../../../src/dpm/cleaner-planner.js';
import { cleanBlocks, type CleanHooks, type CleanVictim } from '../../../src/dpm/cleaner.js';
import { IndexReader } from '../../../src/dpm/index-reader.js';
import { Block, BlockState, cleanerChainRank, commitSealedBit } from '../../../src/dpm/layout.js';
import { Entry, entryBytes } from '../../../src/dpm/log-entry.js';
import { mergeChainThrough } from '../../../src/dpm/merge.js';
import type { Region } from '../../../src/dpm/region.js';
import { FakeKn, blockField, dec, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

interface Setup {
  region: Region;
  allocator: BlockAllocator;
  kn: FakeKn;
  /** Commits and seals the current block and moves the KN to a newly allocated one. */
  switchBlock(): void;
  /** Merges chain 0 through its commits and returns freed blocks to the allocator. */
  merge(): number[];
  get(key: string): string | null;
  reader: IndexReader;
}

function setup(blocks = 8, cleanerReserve = 0): Setup {
  const region = makeRegion({ blocks, indexBytes: 256 * 1024 });
  const allocator = new BlockAllocator(region, { cleanerReserve });
  const reader = new IndexReader(dpmFabric(region), region.geometry);
  const alloc = (rank: number): number => allocator.allocate(rank);
  const s: Setup = {
    region,
    allocator,
    reader,
    kn: new FakeKn(region, alloc, 0),
    switchBlock() {
      s.kn.commit();
      s.kn.seal();
      s.kn = new FakeKn(region, alloc, 0);
      s.kn.commit(); // allocates and links the next block, as a KN's prefetch does
    },
    merge() {
      const freed = mergeChainThrough(region, 0).freedBlocks;
      allocator.release(freed);
      return freed;
    },
    get(key) {
      const k = enc.encode(key);
      return reader.lookup(k, hashKey(k)) ? dec.decode(reader.value) : null;
    },
  };
  return s;
}

function victimOf(s: Setup, block: number): CleanVictim {
  return { block, generation: blockField(s.region, block, Block.generation), cursor: 0 };
}

function commitBytesOf(region: Region, block: number): number {
  return blockField(region, block, Block.commitBytes);
}

const pad = (text: string, bytes: number): string => text.padEnd(bytes, '.');

describe('cleanBlocks', () => {
  it('copies the live entries of a block, repoints the index and frees the block', () => {
    const s = setup();
    for (let i = 0; i < 300; i++) s.kn.put(`k${i}`, pad(`v${i}`, 200), 1, i + 1);
    const victim = s.kn.block;
    const victimGeneration = s.kn.generation;
    s.switchBlock();
    for (let i = 0; i < 300; i += 3) s.kn.put(`k${i}`, `w${i}`, 1, 1000 + i);
    for (let i = 1; i < 300; i += 3) s.kn.del(`k${i}`, 1, 2000 + i);
    s.kn.commit();
    expect(s.merge()).toEqual([]);
    expect(blockField(s.region, victim, Block.state)).toBe(BlockState.merged);
    expect(blockField(s.region, victim, Block.liveEntries)).toBe(100);
    const liveBytes = blockField(s.region, victim, Block.liveBytes);
    expect(liveBytes).toBe(100 * entryBytes(4, 200));
    expect(checkLiveCounts(s.region)).toEqual([]);

    const dest = s.allocator.allocateCleanerBlock(0);
    const result = cleanBlocks(s.region, {
      destBlock: dest,
      victims: [victimOf(s, victim)],
      batchEntries: 16,
    });
    expect(result).toMatchObject({
      entriesCopied: 100,
      bytesCopied: liveBytes,
      deadCopies: 0,
      destSealed: false,
      freedBlocks: [victim],
      corruption: null,
    });
    expect(result.victims).toEqual([
      {
        block: victim,
        generation: victimGeneration,
        cursor: commitBytesOf(s.region, victim),
        state: 'freed',
      },
    ]);
    expect(blockField(s.region, victim, Block.state)).toBe(BlockState.free);
    // The destination is self-describing: cleaner rank, commit word covering the copies.
    expect(blockField(s.region, dest, Block.state)).toBe(BlockState.cleanerOpen);
    expect(blockField(s.region, dest, Block.chainRank)).toBe(cleanerChainRank);
    expect(blockField(s.region, dest, Block.liveEntries)).toBe(100);
    expect(blockField(s.region, dest, Block.liveBytes)).toBe(liveBytes);
    expect(commitBytesOf(s.region, dest)).toBe(Block.headerBytes + liveBytes);
    expect(blockField(s.region, dest, Block.commitInfo)).toBe(100);
    expect(blockField(s.region, dest, Block.mergedBytes)).toBe(Block.headerBytes + liveBytes);
    for (let i = 0; i < 300; i++) {
      const expected = i % 3 === 0 ? `w${i}` : i % 3 === 1 ? null : pad(`v${i}`, 200);
      expect(s.get(`k${i}`)).toBe(expected);
    }
    // Lookups now land in the destination, with its generation (what a new shortcut records).
    expect(s.get('k2')).not.toBeNull();
    expect(s.reader.entryOffset - dest).toBeGreaterThanOrEqual(Block.headerBytes);
    expect(s.reader.entryOffset - dest).toBeLessThan(s.region.geometry.blockBytes);
    expect(s.reader.generation).toBe(blockField(s.region, dest, Block.generation));
    expect(checkLiveCounts(s.region)).toEqual([]);

    // The victim goes back to the allocator and is reused with a bumped generation; entries
    // written there under the new generation fail an old shortcut's generation check.
    s.allocator.release(result.freedBlocks);
    let reused = 0;
    while (reused !== victim) {
      s.switchBlock();
      reused = s.kn.block;
    }
    expect(blockField(s.region, victim, Block.generation)).toBe(victimGeneration + 1);
    expect(blockField(s.region, victim, Block.liveBytes)).toBe(0);
    s.kn.put('fresh', pad('x', 200), 2, 1);
    s.kn.commit();
    s.merge();
    const oldEntryGeneration = s.region.view.getUint32(
      victim + Block.headerBytes + Entry.generation,
      true,
    );
    expect(oldEntryGeneration).toBe(victimGeneration + 1);
    expect(s.get('fresh')).toBe(pad('x', 200));
    expect(s.get('k2')).toBe(pad('v2', 200));
    expect(checkLiveCounts(s.region)).toEqual([]);
  });

  it('lets a merge that replaces or deletes a key between copy and repoint win', () => {
    const s = setup();
    for (let i = 0; i < 50; i++) s.kn.put(`a${i}`, pad(`old${i}`, 100), 1, i + 1);
    const victim = s.kn.block;
    s.switchBlock();
    s.merge();
    const dest = s.allocator.allocateCleanerBlock(0);
    let raced = false;
    const hooks: CleanHooks = {
      afterCopy: () => {
        if (raced) return;
        raced = true;
        // The copies are written and committed, but not yet indexed: a merge slips in.
        s.kn.put('a7', 'newer', 1, 500);
        s.kn.del('a9', 1, 501);
        s.kn.commit();
        s.merge();
      },
    };
    const result = cleanBlocks(
      s.region,
      { destBlock: dest, victims: [victimOf(s, victim)], batchEntries: 64 },
      hooks,
    );
    expect(raced).toBe(true);
    expect(result).toMatchObject({ entriesCopied: 48, deadCopies: 2, freedBlocks: [victim] });
    expect(s.get('a7')).toBe('newer');
    expect(s.get('a9')).toBeNull();
    expect(s.get('a8')).toBe(pad('old8', 100));
    // Both copies are committed (the commit word preceded the repoint) but neither is live.
    expect(blockField(s.region, dest, Block.commitInfo)).toBe(50);
    expect(blockField(s.region, dest, Block.liveEntries)).toBe(48);
    expect(blockField(s.region, dest, Block.liveBytes)).toBe(48 * entryBytes(3, 100));
    expect(checkLiveCounts(s.region)).toEqual([]);
  });

  it('seals a full destination and continues the cut-short victim in the next task', () => {
    const s = setup(10);
    const value = pad('v', 1000);
    const victims: number[] = [];
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 1300; i++) s.kn.put(`b${b}-${i}`, value, 1, b * 10_000 + i + 1);
      victims.push(s.kn.block);
      s.switchBlock();
    }
    s.merge();
    const first = s.allocator.allocateCleanerBlock(0);
    const one = cleanBlocks(s.region, {
      destBlock: first,
      victims: victims.map((b) => victimOf(s, b)),
      batchEntries: 100,
    });
    expect(one.destSealed).toBe(true);
    expect(one.victims.map((v) => v.state)).toEqual(['freed', 'partial']);
    const cut = one.victims[1] as CleanVictim;
    expect(cut.cursor).toBeGreaterThan(Block.headerBytes);
    expect(blockField(s.region, first, Block.state)).toBe(BlockState.merged);
    const firstCommit = BigInt(blockField(s.region, first, Block.commitInfo));
    expect(firstCommit & BigInt(commitSealedBit)).not.toBe(0n);
    expect(blockField(s.region, cut.block, Block.state)).toBe(BlockState.merged);
    expect(checkLiveCounts(s.region)).toEqual([]);

    const second = s.allocator.allocateCleanerBlock(1);
    const two = cleanBlocks(s.region, { destBlock: second, victims: [cut], batchEntries: 100 });
    expect(two.victims.map((v) => v.state)).toEqual(['freed']);
    expect(one.entriesCopied + two.entriesCopied).toBe(2600);
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 1300; i += 97) expect(s.get(`b${b}-${i}`)).toBe(value);
    }
    expect(checkLiveCounts(s.region)).toEqual([]);
  });

  it('skips a victim that is no longer a merged block of that generation', () => {
    const s = setup();
    s.kn.put('x', '1', 1, 1);
    const block = s.kn.block;
    const stale = victimOf(s, block);
    s.switchBlock();
    // Not merged yet: the block is still in its chain, and must not be touched.
    const dest = s.allocator.allocateCleanerBlock(0);
    const request = { destBlock: dest, victims: [stale], batchEntries: 8 };
    expect(cleanBlocks(s.region, request).victims[0]?.state).toBe('skipped');
    s.merge();
    expect(cleanBlocks(s.region, request).victims[0]?.state).toBe('freed');
    expect(cleanBlocks(s.region, request).victims[0]?.state).toBe('skipped');
    expect(s.get('x')).toBe('1');
  });

  it('refuses to launder a corrupt live entry and leaves its block merged', () => {
    const s = setup();
    for (let i = 0; i < 20; i++) s.kn.put(`c${i}`, pad('v', 64), 1, i + 1);
    const victim = s.kn.block;
    s.switchBlock();
    s.merge();
    const fifth = victim + Block.headerBytes + 5 * entryBytes(2, 64);
    const flipped = fifth + Entry.key + 4; // a bit flip in a committed value
    s.region.bytes[flipped] = (s.region.bytes[flipped] as number) ^ 0xff;
    const dest = s.allocator.allocateCleanerBlock(0);
    const result = cleanBlocks(s.region, {
      destBlock: dest,
      victims: [victimOf(s, victim)],
      batchEntries: 8,
    });
    expect(result.victims[0]).toMatchObject({ state: 'corrupt', cursor: fifth - victim });
    expect(result.corruption).toMatch(/fails its checksum/);
    expect(result.entriesCopied).toBe(5);
    expect(blockField(s.region, victim, Block.state)).toBe(BlockState.merged);
    expect(blockField(s.region, victim, Block.liveEntries)).toBe(15);
    expect(checkLiveCounts(s.region)).toEqual([]);
  });
});

type Op =
  | { t: 'put'; key: number; size: number }
  | { t: 'del'; key: number }
  | { t: 'commit' }
  | { t: 'switch' }
  | { t: 'merge' }
  | { t: 'clean'; race: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('put' as const),
      key: fc.nat(23),
      size: fc.integer({ min: 0, max: 3000 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), key: fc.nat(23) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'commit' as const }) },
  { weight: 3, arbitrary: fc.constant({ t: 'switch' as const }) },
  { weight: 3, arbitrary: fc.constant({ t: 'merge' as const }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('clean' as const), race: fc.boolean() }) },
);

describe('live byte accounting', () => {
  it('matches a recount from the index after random put/delete/merge/clean sequences', () => {
    const totals = { blocksCleaned: 0, entriesCopied: 0 };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 30, maxLength: 200 }), (ops) => {
        const s = setup(10, 1);
        const planner = new CleanerPlanner(s.region, s.allocator, {
          victimsPerTask: 3,
          batchEntries: 4,
        });
        const model = new Map<string, string | null>();
        let seq = 0;
        const merge = (): void => {
          s.merge();
          planner.markDirty();
        };
        for (const op of ops) {
          if (op.t === 'put') {
            const value = pad(`${op.key}:${seq}`, op.size);
            s.kn.put(`key${op.key}`, value, 1, ++seq);
            model.set(`key${op.key}`, value);
          } else if (op.t === 'del') {
            s.kn.del(`key${op.key}`, 1, ++seq);
            model.set(`key${op.key}`, null);
          } else if (op.t === 'commit') {
            s.kn.commit();
          } else if (op.t === 'switch') {
            if (s.allocator.hasBlockForChain()) s.switchBlock();
          } else if (op.t === 'merge') {
            merge();
          } else {
            // A racing merge commits what is staged, so it may replace keys being copied.
            const race = (): void => {
              s.kn.commit();
              merge();
            };
            runCleaner(s, planner, op.race ? race : undefined);
          }
          if (op.t === 'merge' || op.t === 'clean') expect(checkLiveCounts(s.region)).toEqual([]);
        }
        s.kn.commit();
        merge();
        runCleaner(s, planner);
        expect(checkLiveCounts(s.region)).toEqual([]);
        for (const [key, value] of model) expect(s.get(key)).toBe(value);
        const stats = planner.stats();
        totals.blocksCleaned += stats.blocksCleaned;
        totals.entriesCopied += stats.entriesCopied;
      }),
      { numRuns: 100 },
    );
    // The sequences did exercise cleaning (copies losing a race with a merge are typical too, about
    // one run in five, but not asserted: the race test above covers them deterministically).
    expect(totals.blocksCleaned).toBeGreaterThan(0);
    expect(totals.entriesCopied).toBeGreaterThan(0);
  });
});

/** Runs cleaning tasks (as if under space pressure) until the planner has nothing to do. */
function runCleaner(s: Setup, planner: CleanerPlanner, race?: () => void): void {
  planner.markDirty();
  for (let tasks = 0; tasks < 100; tasks++) {
    let request;
    try {
      request = planner.nextTask(true);
    } catch (err) {
      if (isDinomoError(err) && err.code === 'REGION_FULL') return;
      throw err;
    }
    if (request === null) return;
    const hooks: CleanHooks = race === undefined ? {} : { afterCopy: race };
    planner.onResult(request, cleanBlocks(s.region, request, hooks));
  }
  throw new Error('cleaning did not converge');
}
