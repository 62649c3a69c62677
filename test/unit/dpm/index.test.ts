import { describe, expect, it } from 'vitest';
import { entryBytesMax } from '../../../src/config/limits.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { hashKey } from '../../../src/util/hash.js';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import {
  fingerprintOf,
  sizeHintBytes,
  sizeHintClass,
  encodeSlot,
  slotEntryOffset,
  slotFingerprint,
  slotSizeClass,
} from '../../../src/dpm/index-format.js';
import { IndexReader, lookupRetriesMax } from '../../../src/dpm/index-reader.js';
import { IndexWriter, type ApplyOutcome } from '../../../src/dpm/index-writer.js';
import { Block } from '../../../src/dpm/layout.js';
import { Entry } from '../../../src/dpm/log-entry.js';
import type { Region } from '../../../src/dpm/region.js';
import { FakeKn, dec, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

interface Setup {
  region: Region;
  kn: FakeKn;
  writer: IndexWriter;
  reader: IndexReader;
  /** Writes, commits and indexes one entry; returns what the index did. */
  put(key: string, value: string, seq: number, epoch?: number): ApplyOutcome;
  del(key: string, seq: number, epoch?: number): ApplyOutcome;
  get(key: string): string | null;
}

function setup(indexBytes = 64 * 1024, blocks = 4): Setup {
  const region = makeRegion({ blocks, indexBytes });
  const allocator = new BlockAllocator(region);
  const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
  const writer = new IndexWriter(region);
  const reader = new IndexReader(dpmFabric(region), region.geometry);
  const apply = (at: number): ApplyOutcome => {
    kn.commit();
    return writer.withLock(() => writer.apply(at, []));
  };
  return {
    region,
    kn,
    writer,
    reader,
    put: (key, value, seq, epoch = 1) => apply(kn.put(key, value, epoch, seq)),
    del: (key, seq, epoch = 1) => apply(kn.del(key, epoch, seq)),
    get: (key) => {
      const k = enc.encode(key);
      return reader.lookup(k, hashKey(k)) ? dec.decode(reader.value) : null;
    },
  };
}

/**
 * Keys whose hashes agree on the low `bits` bits (same bucket in any table of ≤ 2^bits buckets);
 * `highFingerprint` keeps only fingerprints with the top bit set (slots that read as negative words).
 */
function sameBucketKeys(
  count: number,
  bits: number,
  sameFingerprint = false,
  highFingerprint = false,
): string[] {
  const groups = new Map<string, string[]>();
  for (let i = 0; ; i++) {
    const key = `key-${i}`;
    const h = hashKey(enc.encode(key));
    if (highFingerprint && fingerprintOf(h) < 0x8000) continue;
    const group = `${h & ((1 << bits) - 1)}/${sameFingerprint ? fingerprintOf(h) : 0}`;
    const list = groups.get(group) ?? [];
    list.push(key);
    groups.set(group, list);
    if (list.length === count) return list;
  }
}

describe('index slots and size hints', () => {
  it('size hints cover the entry and overshoot by at most 25%', () => {
    for (let n = 40; n <= entryBytesMax; n += n < 4096 ? 8 : 1000) {
      const decoded = sizeHintBytes(sizeHintClass(n));
      expect(decoded).toBeGreaterThanOrEqual(n);
      expect(decoded).toBeLessThanOrEqual(Math.ceil(n * 1.25));
      expect(sizeHintClass(n)).toBeLessThan(256);
    }
  });

  it('slots round-trip fingerprint, size class and large offsets; fingerprints are never 0', () => {
    const offset = 2 ** 42 - 8;
    const slot = encodeSlot(0xbeef, 77, offset);
    const hi = Number(BigInt.asUintN(64, slot) >> 32n);
    const lo = Number(BigInt.asUintN(64, slot) & 0xffff_ffffn);
    expect(slotFingerprint(hi)).toBe(0xbeef);
    expect(slotSizeClass(hi)).toBe(77);
    expect(slotEntryOffset(hi, lo)).toBe(offset);
    for (let h = 0; h < 100_000; h += 7) expect(fingerprintOf(h)).toBeGreaterThan(0);
  });
});

describe('IndexWriter + IndexReader', () => {
  it('inserts, replaces (upsert) and deletes', () => {
    const s = setup();
    expect(s.get('a')).toBeNull();
    expect(s.put('a', 'one', 1)).toBe('inserted');
    expect(s.get('a')).toBe('one');
    expect(s.put('a', 'two', 2)).toBe('replaced');
    expect(s.get('a')).toBe('two');
    expect(s.reader.seq).toBe(2);
    expect(s.reader.epoch).toBe(1);
    expect(s.reader.generation).toBe(s.kn.generation);
    expect(s.del('a', 3)).toBe('removed');
    expect(s.get('a')).toBeNull();
    expect(s.del('a', 4)).toBe('absent');
    expect(s.put('a', 'three', 5)).toBe('inserted');
    expect(s.get('a')).toBe('three');
    expect(s.writer.stats().entryCount).toBe(1);
  });

  it('never lets an older version overwrite a newer one', () => {
    const s = setup();
    expect(s.put('k', 'new', 10)).toBe('inserted');
    expect(s.put('k', 'old', 9)).toBe('stale');
    expect(s.put('k', 'same', 10)).toBe('stale');
    expect(s.del('k', 5)).toBe('stale');
    expect(s.get('k')).toBe('new');
    // A newer epoch wins over a higher sequence number of an older epoch.
    expect(s.put('k', 'epoch2', 1, 2)).toBe('replaced');
    expect(s.put('k', 'epoch1', 99, 1)).toBe('stale');
    expect(s.get('k')).toBe('epoch2');
  });

  it('keeps log blocks live-entry counts', () => {
    const s = setup();
    s.put('a', '1', 1);
    s.put('b', '1', 2);
    const block = s.kn.block;
    const live = (): number => s.region.view.getUint32(block + Block.liveEntries, true);
    expect(live()).toBe(2);
    s.put('a', '2', 3);
    expect(live()).toBe(2);
    s.put('a', '0', 1); // stale: no change
    expect(live()).toBe(2);
    s.del('b', 4);
    expect(live()).toBe(1);
    s.del('zz', 5);
    expect(live()).toBe(1);
  });

  it('tells fingerprint collisions apart by the key', () => {
    const s = setup();
    const [a, b] = sameBucketKeys(2, 16, true) as [string, string];
    s.put(a, 'A', 1);
    expect(s.get(a)).toBe('A'); // warms the geometry cache
    expect(s.get(b)).toBeNull();
    // The bucket, the colliding entry, then a re-read of its slot (proving the slot did not change).
    expect(s.reader.lastLookupRts).toBe(3);
    s.put(b, 'B', 2);
    expect(s.get(a)).toBe('A');
    expect(s.get(b)).toBe('B');
    s.del(a, 3);
    expect(s.get(a)).toBeNull();
    expect(s.get(b)).toBe('B');
  });

  it('tells collisions apart when the fingerprint has its top bit set (the slot word is negative)', () => {
    // Regression: the re-read of the colliding slot compared a signed word with an unsigned one,
    // so the slot always looked changed and the lookup of the second key ended in CORRUPT.
    const s = setup();
    const [a, b] = sameBucketKeys(2, 16, true, true) as [string, string];
    s.put(a, 'A', 1);
    s.put(b, 'B', 2);
    expect(s.get(a)).toBe('A');
    expect(s.get(b)).toBe('B');
  });

  it('chains overflow buckets and follows them at 1 RT each', () => {
    const s = setup(8192); // 16 buckets
    const keys = sameBucketKeys(14, 4);
    keys.forEach((k, i) => s.put(k, `v${i}`, i + 1));
    expect(s.writer.stats().overflowBuckets).toBe(2);
    expect(s.writer.stats().bucketCount).toBe(16);
    s.get(keys[0] as string); // warm the geometry cache
    keys.forEach((k, i) => {
      expect(s.get(k)).toBe(`v${i}`);
      expect(s.reader.lastLookupRts).toBe(2 + Math.floor(i / 6));
    });
    // Freed slots are reused and the chain stays consistent.
    s.del(keys[2] as string, 100);
    s.put('another', 'x', 101);
    keys.forEach((k, i) => expect(s.get(k)).toBe(i === 2 ? null : `v${i}`));
  });

  it('takes 2 RTs for a common hit once the geometry is cached', () => {
    const s = setup();
    s.put('hot', 'value', 1);
    expect(s.get('hot')).toBe('value');
    expect(s.reader.lastLookupRts).toBe(3); // descriptor + bucket + entry
    expect(s.get('hot')).toBe('value');
    expect(s.reader.lastLookupRts).toBe(2);
    expect(s.get('cold')).toBeNull();
    expect(s.reader.lastLookupRts).toBeLessThanOrEqual(2);
  });

  it('reads a large value in one entry read thanks to the size hint', () => {
    const s = setup();
    const big = 'x'.repeat(300_000);
    s.put('big', big, 1);
    s.get('big');
    const fabric = (s.reader as unknown as { fabric: { counters: { bytesRead: number } } }).fabric;
    const before = fabric.counters.bytesRead;
    expect(s.get('big')).toBe(big);
    expect(s.reader.lastLookupRts).toBe(2);
    const entryRead = fabric.counters.bytesRead - before - 64;
    expect(entryRead).toBeGreaterThanOrEqual(s.reader.entryBytes);
    expect(entryRead).toBeLessThanOrEqual(s.reader.entryBytes * 1.25);
  });

  it('grows while a reader holds a stale geometry; the reader finds every key', () => {
    const s = setup(256 * 1024);
    const initial = s.writer.stats();
    s.put('first', 'f', 1);
    expect(s.get('first')).toBe('f');
    const cachedVersion = s.reader.cachedVersion;
    const n = 2000;
    for (let i = 0; i < n; i++) s.put(`k${i}`, `v${i}`, i + 2);
    const grown = s.writer.stats();
    expect(grown.version).toBeGreaterThan(initial.version);
    expect(grown.bucketCount).toBeGreaterThanOrEqual(initial.bucketCount * 4);
    expect(grown.entryCount).toBe(n + 1);
    expect(s.get('first')).toBe('f');
    expect(s.reader.geometryRefreshes).toBe(1);
    expect(s.reader.cachedVersion).toBe(grown.version);
    expect(s.reader.cachedVersion).not.toBe(cachedVersion);
    expect(s.reader.lastLookupRts).toBe(4); // retired bucket, descriptor, bucket, entry
    for (let i = 0; i < n; i++) expect(s.get(`k${i}`)).toBe(`v${i}`);
    expect(s.reader.geometryRefreshes).toBe(1);
  });

  it('reports REGION_FULL when the index area is exhausted and changes nothing', () => {
    const s = setup(8192);
    let inserted = 0;
    let error: unknown = null;
    for (let i = 0; i < 1000 && error === null; i++) {
      try {
        s.put(`key${i}`, 'v', i + 1);
        inserted++;
      } catch (err) {
        error = err;
      }
    }
    expect(isDinomoError(error) && error.code).toBe('REGION_FULL');
    expect(s.writer.stats().entryCount).toBe(inserted);
    for (let i = 0; i < inserted; i++) expect(s.get(`key${i}`)).toBe('v');
    // Replacing and deleting still work, and a delete makes room again.
    expect(s.put('key0', 'w', 5000)).toBe('replaced');
    expect(s.del('key1', 5001)).toBe('removed');
    expect(s.put('fresh', 'f', 5002)).toBe('inserted');
    expect(s.get('key0')).toBe('w');
    expect(s.get('fresh')).toBe('f');
  });

  it('retries a lookup that meets a corrupt entry, then reports CORRUPT', () => {
    const s = setup();
    const at = s.kn.put('victim', 'value', 1, 1);
    s.kn.commit();
    s.writer.withLock(() => s.writer.apply(at, []));
    expect(s.get('victim')).toBe('value');
    const bytes = s.region.bytes;
    bytes[at + Entry.key + 2] = (bytes[at + Entry.key + 2] as number) ^ 0xff; // flips a key byte: the CRC no longer matches
    let code = '';
    try {
      s.get('victim');
    } catch (err) {
      code = isDinomoError(err) ? err.code : String(err);
    }
    expect(code).toBe('CORRUPT');
    expect(s.reader.lastLookupRts).toBeGreaterThan(lookupRetriesMax);
  });
});
