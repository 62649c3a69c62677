import { describe, expect, it } from 'vitest';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { IndexReader } from '../../../src/dpm/index-reader.js';
import { IndexWriter } from '../../../src/dpm/index-writer.js';
import { hashKey } from '../../../src/util/hash.js';
import { Block, BlockState } from '../../../src/dpm/layout.js';
import {
  EntryFlag,
  EntryOp,
  entryBytes,
  entryIsValid,
  entryLinkAt,
  entrySpanAt,
} from '../../../src/dpm/log-entry.js';
import { mergeChain } from '../../../src/dpm/merge.js';
import { loadU32, type Region } from '../../../src/dpm/region.js';
import { FakeKn, dec, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

/** Clover mode's chains of linked versions, on the DPM side (docs/baselines.md). */
function setup() {
  const region = makeRegion({ blocks: 4, indexBytes: 64 * 1024 });
  const allocator = new BlockAllocator(region);
  const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
  const writer = new IndexWriter(region);
  let seq = 0;
  const linked = (key: string, value: string | null): number => {
    const op = value === null ? EntryOp.delete : EntryOp.put;
    const at = kn.append(
      op,
      key,
      value === null ? null : enc.encode(value),
      1,
      ++seq,
      EntryFlag.linked,
    );
    kn.commit();
    return at;
  };
  return { region, kn, writer, linked };
}

/** What a clover writer's compare-and-swap does: links `next` behind `at` if nothing is linked yet. */
function link(region: Region, at: number, next: number): boolean {
  const word = entryLinkAt(region.view, at) / 8;
  return Atomics.compareExchange(region.i64, word, 0n, BigInt(next)) === 0n;
}

const indexed = (writer: IndexWriter, key: string): number =>
  writer.withLock(() => writer.lookup(enc.encode(key)));

describe('linked entries (clover mode)', () => {
  it('carry an 8-byte link after the checksummed body that the checksum ignores', () => {
    const { region, linked } = setup();
    const at = linked('k', 'v1');
    const view = region.view;
    expect(entrySpanAt(view, at)).toBe(entryBytes(1, 2) + 8);
    expect(entryLinkAt(view, at)).toBe(at + entryBytes(1, 2));
    expect(view.getBigUint64(entryLinkAt(view, at), true)).toBe(0n);
    link(region, at, 4096);
    expect(entryIsValid(region.bytes, view, at, at + entrySpanAt(view, at))).toBe(true);
    // A link word past the limit makes the entry not well formed.
    expect(entryIsValid(region.bytes, view, at, at + entrySpanAt(view, at) - 1)).toBe(false);
  });

  it('creates a key once: a second create gets the first version back', () => {
    const { writer, linked, region } = setup();
    const first = linked('k', 'a');
    const second = linked('k', 'b');
    expect(writer.withLock(() => writer.createLinked(first))).toBe(first);
    expect(writer.withLock(() => writer.createLinked(second))).toBe(first);
    expect(indexed(writer, 'k')).toBe(first);
    const g = region.geometry;
    const block = first - ((first - g.blocksOffset) % g.blockBytes);
    expect(loadU32(region, block + Block.pinned)).toBe(1);
  });

  it('moves the index forward along the chain only, never back, never to an unlinked version', () => {
    const { region, writer, linked } = setup();
    const v1 = linked('k', 'v1');
    writer.withLock(() => writer.createLinked(v1));
    const v2 = linked('k', 'v2');
    const v3 = linked('k', 'v3');
    const loser = linked('k', 'lost its CAS');
    expect(link(region, v1, v2)).toBe(true);
    expect(link(region, v2, v3)).toBe(true);
    expect(link(region, v2, loser)).toBe(false);
    const apply = (at: number) => writer.withLock(() => writer.apply(at, []));
    // Applied out of order (v3 first, as merges of different chains may): v2 must not move it back.
    expect(apply(v3)).toBe('replaced');
    expect(indexed(writer, 'k')).toBe(v3);
    expect(apply(v2)).toBe('stale');
    expect(apply(loser)).toBe('stale');
    expect(indexed(writer, 'k')).toBe(v3);
    // A tombstone is a version like any other: the key stays indexed, at the tombstone.
    const gone = linked('k', null);
    expect(link(region, v3, gone)).toBe(true);
    expect(apply(gone)).toBe('replaced');
    expect(indexed(writer, 'k')).toBe(gone);
    // A key never created is not indexed by a merge.
    expect(apply(linked('other', 'x'))).toBe('absent');
    expect(indexed(writer, 'other')).toBe(-1);
  });

  it('is read by the KN-side index reader with its link, tombstones included', () => {
    const { region, writer, linked } = setup();
    const reader = new IndexReader(dpmFabric(region), region.geometry);
    const key = enc.encode('k');
    const v1 = linked('k', 'v1');
    writer.withLock(() => writer.createLinked(v1));
    expect(reader.lookup(key, hashKey(key))).toBe(true);
    expect(reader).toMatchObject({ entryOffset: v1, linked: true, link: 0, op: EntryOp.put });
    expect(dec.decode(reader.value)).toBe('v1');
    expect(reader.entryBytes).toBe(entrySpanAt(region.view, v1));
    const gone = linked('k', null);
    link(region, v1, gone);
    expect(reader.lookup(key, hashKey(key))).toBe(true);
    expect(reader.link).toBe(gone);
    writer.withLock(() => writer.apply(gone, []));
    expect(reader.lookup(key, hashKey(key))).toBe(true);
    expect(reader).toMatchObject({ entryOffset: gone, op: EntryOp.delete, link: 0 });
  });

  it('merges whole chains of linked entries and never frees their blocks', () => {
    const { region, kn, writer, linked } = setup();
    const v1 = linked('k', 'v1');
    writer.withLock(() => writer.createLinked(v1));
    let tail = v1;
    // Fill more than one block, so the first is sealed and fully merged.
    const value = 'x'.repeat(2000);
    const perBlock = Math.ceil(region.geometry.blockBytes / 2048);
    for (let i = 0; i < perBlock + 2; i++) {
      const next = linked('k', value);
      expect(link(region, tail, next)).toBe(true);
      tail = next;
    }
    kn.seal();
    for (;;) {
      const r = mergeChain(region, 0, 1000);
      expect(r.corruption).toBeNull();
      if (r.reachedCommit) break;
    }
    expect(indexed(writer, 'k')).toBe(tail);
    const g = region.geometry;
    const firstBlock = v1 - ((v1 - g.blocksOffset) % g.blockBytes);
    expect(loadU32(region, firstBlock + Block.state)).toBe(BlockState.merged);
    // No entry of the first block is indexed any more, yet it stays pinned and is not freed.
    expect(loadU32(region, firstBlock + Block.liveEntries)).toBe(0);
    expect(loadU32(region, firstBlock + Block.pinned)).toBe(1);
  });
});
