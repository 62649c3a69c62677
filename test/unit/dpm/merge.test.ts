import { describe, expect, it } from 'vitest';
import { hashKey } from '../../../src/util/hash.js';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { IndexReader } from '../../../src/dpm/index-reader.js';
import { IndexWriter } from '../../../src/dpm/index-writer.js';
import { Block, BlockState, Chain, lsnOf } from '../../../src/dpm/layout.js';
import { Entry, EntryOp, writeEntry } from '../../../src/dpm/log-entry.js';
import { mergeChain, mergeChainThrough } from '../../../src/dpm/merge.js';
import { chainRecordOffset, type Region } from '../../../src/dpm/region.js';
import { FakeKn, blockField, chainField, dec, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

interface Setup {
  region: Region;
  allocator: BlockAllocator;
  kns: FakeKn[];
  reader: IndexReader;
  get(key: string): string | null;
}

function setup(options: { chains?: number; blocks?: number; indexBytes?: number } = {}): Setup {
  const region = makeRegion(options);
  const allocator = new BlockAllocator(region);
  const kns = Array.from(
    { length: options.chains ?? 1 },
    (_, rank) => new FakeKn(region, (r) => allocator.allocate(r), rank),
  );
  const reader = new IndexReader(dpmFabric(region), region.geometry);
  return {
    region,
    allocator,
    kns,
    reader,
    get: (key) => {
      const k = enc.encode(key);
      return reader.lookup(k, hashKey(k)) ? dec.decode(reader.value) : null;
    },
  };
}

const kn0 = (s: Setup): FakeKn => s.kns[0] as FakeKn;

describe('mergeChain', () => {
  it('applies committed entries in log order; every key is readable afterwards', () => {
    const s = setup();
    const kn = kn0(s);
    for (let i = 0; i < 500; i++) kn.put(`k${i}`, `v${i}`, 1, i + 1);
    kn.commit();
    for (let i = 0; i < 500; i += 2) kn.put(`k${i}`, `w${i}`, 1, 1000 + i);
    for (let i = 1; i < 500; i += 10) kn.del(`k${i}`, 1, 2000 + i);
    kn.commit();
    const result = mergeChainThrough(s.region, 0);
    expect(result.corruption).toBeNull();
    expect(result.reachedCommit).toBe(true);
    expect(result.applied).toBe(500 + 250 + 50);
    expect(result.mergedLsn).toBe(lsnOf(kn.blockSeq, kn.committedBytes));
    expect(chainField(s.region, 0, Chain.mergedLsn)).toBe(result.mergedLsn);
    expect(blockField(s.region, kn.block, Block.mergedBytes)).toBe(kn.committedBytes);
    for (let i = 0; i < 500; i++) {
      const expected = i % 10 === 1 ? null : i % 2 === 0 ? `w${i}` : `v${i}`;
      expect(s.get(`k${i}`)).toBe(expected);
    }
    expect(blockField(s.region, kn.block, Block.liveEntries)).toBe(500 - 50);
    // Nothing new: a second pass applies nothing and still reports caught up.
    const again = mergeChain(s.region, 0, 100);
    expect(again).toMatchObject({ applied: 0, reachedCommit: true, mergedLsn: result.mergedLsn });
  });

  it('respects the entry budget and resumes from the cursor', () => {
    const s = setup();
    const kn = kn0(s);
    for (let i = 0; i < 25; i++) kn.put(`k${i}`, 'v', 1, i + 1);
    kn.commit();
    const first = mergeChain(s.region, 0, 10);
    expect(first).toMatchObject({ applied: 10, reachedCommit: false });
    expect(s.get('k9')).toBe('v');
    expect(s.get('k10')).toBeNull();
    const rest = mergeChainThrough(s.region, 0, 10);
    expect(rest.applied).toBe(15);
    expect(rest.reachedCommit).toBe(true);
    expect(s.get('k24')).toBe('v');
  });

  it('ignores a torn tail beyond the commit offset', () => {
    const s = setup();
    const kn = kn0(s);
    kn.put('committed', 'yes', 1, 1);
    kn.commit();
    // A complete-looking entry and garbage, both beyond the commit offset.
    const torn = new Uint8Array(256);
    writeEntry(
      torn,
      new DataView(torn.buffer),
      0,
      EntryOp.put,
      enc.encode('torn'),
      enc.encode('no'),
      kn.generation,
      1,
      2,
    );
    torn.fill(0xab, 64);
    kn.writeTorn(torn);
    const result = mergeChainThrough(s.region, 0);
    expect(result).toMatchObject({ applied: 1, reachedCommit: true, corruption: null });
    expect(s.get('committed')).toBe('yes');
    expect(s.get('torn')).toBeNull();
  });

  it('stops at a committed entry with a bad checksum and applies nothing past it', () => {
    const s = setup();
    const kn = kn0(s);
    kn.put('a', '1', 1, 1);
    const bad = kn.put('b', '2', 1, 2);
    kn.put('c', '3', 1, 3);
    kn.commit();
    s.region.bytes[bad + Entry.key] = 0x7a; // 'b' -> 'z' without fixing the CRC
    const result = mergeChain(s.region, 0, 100);
    expect(result.applied).toBe(1);
    expect(result.corruption).toMatch(/fails its checksum/);
    expect(result.reachedCommit).toBe(false);
    expect(result.mergedLsn).toBe(lsnOf(kn.blockSeq, bad - kn.block));
    expect(s.get('a')).toBe('1');
    expect(s.get('c')).toBeNull();
    expect(mergeChain(s.region, 0, 100).corruption).toMatch(/fails its checksum/);
  });

  it('moves the head past sealed, merged blocks and frees blocks whose entries are all dead', () => {
    const s = setup({ blocks: 2 });
    const kn = kn0(s);
    for (let i = 0; i < 10; i++) kn.put(`k${i}`, 'old', 1, i + 1);
    kn.commit();
    const first = kn.block;
    const firstGeneration = kn.generation;
    expect(mergeChainThrough(s.region, 0).freedBlocks).toEqual([]);
    // Switch blocks the way a KN does: allocate the next block, seal the old one.
    kn.seal();
    const second = s.allocator.allocate(0);
    expect(chainField(s.region, 0, Chain.blocksInChain)).toBe(2);
    const result = mergeChainThrough(s.region, 0);
    expect(result.freedBlocks).toEqual([]); // still 10 live entries
    expect(chainField(s.region, 0, Chain.headBlock)).toBe(second);
    expect(chainField(s.region, 0, Chain.blocksInChain)).toBe(1);
    expect(blockField(s.region, first, Block.state)).toBe(BlockState.merged);
    expect(result.mergedLsn).toBe(lsnOf(kn.blockSeq + 1, Block.headerBytes));

    // Overwrite every key from the second block: a later merge kills the first block's last entry.
    const kn2 = new FakeKn(s.region, () => second, 0);
    for (let i = 0; i < 10; i++) kn2.put(`k${i}`, 'new', 1, 100 + i);
    kn2.commit();
    const later = mergeChainThrough(s.region, 0);
    expect(later.freedBlocks).toEqual([first]);
    expect(blockField(s.region, first, Block.state)).toBe(BlockState.free);
    for (let i = 0; i < 10; i++) expect(s.get(`k${i}`)).toBe('new');

    // Reuse: the freed block comes back with a bumped generation.
    s.allocator.release(later.freedBlocks);
    kn2.seal();
    const reused = s.allocator.allocate(0);
    expect(reused).toBe(first);
    expect(blockField(s.region, reused, Block.generation)).toBe(firstGeneration + 1);
    expect(blockField(s.region, reused, Block.liveEntries)).toBe(0);
  });

  it('frees a sealed block whose entries all died before it was retired', () => {
    const s = setup({ blocks: 3 });
    const kn = kn0(s);
    kn.put('x', '1', 1, 1);
    kn.put('x', '2', 1, 2);
    kn.del('x', 1, 3);
    kn.commit();
    kn.seal();
    const first = kn.block;
    s.allocator.allocate(0);
    const result = mergeChainThrough(s.region, 0);
    expect(result.freedBlocks).toEqual([first]);
    expect(s.get('x')).toBeNull();
  });

  it('keeps the newest version whatever order the chains are merged in', () => {
    const s = setup({ chains: 2 });
    const [a, b] = s.kns as [FakeKn, FakeKn];
    a.put('k', 'from-epoch-2', 2, 1);
    a.commit();
    b.put('k', 'from-epoch-1', 1, 50);
    b.put('gone', 'x', 1, 51);
    b.commit();
    a.del('gone', 2, 2);
    a.commit();
    mergeChainThrough(s.region, 0);
    mergeChainThrough(s.region, 1);
    expect(s.get('k')).toBe('from-epoch-2');
    // Deletes are not remembered in the index: the older put of 'gone' from chain 1 comes back. The
    // handoff rule (merge the old owner's chain before the new owner writes) prevents this order.
    expect(s.get('gone')).toBe('x');
  });

  it('skips a chain whose merge lock is held', () => {
    const s = setup();
    kn0(s).put('a', '1', 1, 1);
    kn0(s).commit();
    const lockIndex = (chainRecordOffset(s.region, 0) + Chain.mergeLock) / 4;
    Atomics.store(s.region.i32, lockIndex, 1);
    expect(mergeChain(s.region, 0, 10)).toMatchObject({
      skipped: true,
      applied: 0,
      reachedCommit: false,
    });
    Atomics.store(s.region.i32, lockIndex, 0);
    expect(mergeChain(s.region, 0, 10)).toMatchObject({
      skipped: false,
      applied: 1,
      reachedCommit: true,
    });
  });

  it('leaves entries unmerged when the index is full, and loses nothing', () => {
    const s = setup({ chains: 2, indexBytes: 8192 });
    const [kn, other] = s.kns as [FakeKn, FakeKn];
    for (let i = 0; i < 600; i++) kn.put(`key${i}`, `v${i}`, 1, i + 1);
    kn.commit();
    const result = mergeChainThrough(s.region, 0);
    expect(result.indexFull).toBe(true);
    expect(result.reachedCommit).toBe(false);
    const merged = result.applied;
    expect(merged).toBeGreaterThan(100);
    expect(merged).toBeLessThan(600);
    expect(result.mergedLsn).toBeLessThan(lsnOf(kn.blockSeq, kn.committedBytes));
    for (let i = 0; i < merged; i++) expect(s.get(`key${i}`)).toBe(`v${i}`);
    expect(s.get(`key${merged}`)).toBeNull();
    expect(new IndexWriter(s.region).stats().entryCount).toBe(merged);
    // Log order is kept: the stuck entry stays first. Deletes merged from another chain make room,
    // and the stuck chain then continues where it stopped.
    for (let i = 0; i < 50; i++) other.del(`key${i}`, 2, i + 1);
    other.commit();
    expect(mergeChainThrough(s.region, 1).corruption).toBeNull();
    const retry = mergeChainThrough(s.region, 0);
    // Freed slots help only keys that hash to their buckets, so fewer than 50 may fit.
    expect(retry.applied).toBeGreaterThan(0);
    expect(retry.applied).toBeLessThanOrEqual(50);
    for (let i = merged; i < merged + retry.applied; i++) expect(s.get(`key${i}`)).toBe(`v${i}`);
  });
});
