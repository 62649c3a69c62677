import { describe, expect, it } from 'vitest';
import { DpmManagerCore } from '../../../src/dpm/dpm-manager-core.js';
import { IndexWriter } from '../../../src/dpm/index-writer.js';
import { mergeChain } from '../../../src/dpm/merge.js';
import {
  partitionTagOf,
  slotOfTaggedKey,
  tagKey,
  untaggedKey,
  partitionedKeyBytesMax,
} from '../../../src/dpm/partition-key.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { slotOfKey } from '../../../src/routing/index.js';
import { FakeKn, dec, enc, makeRegion } from './dpm-test-kit.js';

/** DINOMO-N mode's private partitions on the DPM side (docs/baselines.md, "DINOMO-N"). */
function setup(keysPerTag: number) {
  const region = makeRegion({ chains: 3, blocks: 8, indexBytes: 256 * 1024 });
  const core = new DpmManagerCore<string>(region, { maxWaiters: 8 });
  const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 0);
  const buffer = new Uint8Array(partitionedKeyBytesMax);
  const stored: string[] = [];
  let seq = 0;
  for (let tag = 0; tag < 3; tag++) {
    for (let i = 0; i < keysPerTag; i++) {
      const key = tagKey(tag, enc.encode(`user${i}`), buffer).slice();
      kn.put(key, `v${tag}.${i}`, 1, ++seq);
      stored.push(named(key));
    }
  }
  kn.commit();
  while (mergeChain(region, 0, 1000).applied > 0);
  return { region, core, stored };
}

/** A stored key as `tag:userKey`. */
function named(stored: Uint8Array): string {
  return `${partitionTagOf(stored)}:${dec.decode(untaggedKey(stored))}`;
}

function scanAll(
  core: DpmManagerCore<string>,
  rank: number,
  slots: number[],
  keysMax: number,
): { keys: string[]; pages: number } {
  const keys: string[] = [];
  let version = -1;
  let bucket = 0;
  for (let pages = 1; ; pages++) {
    const page = core.scanPartitions(rank, undefined, slots, version, bucket, keysMax);
    keys.push(...page.keys.map(named));
    if (page.nextBucket < 0) return { keys, pages };
    version = page.tableVersion;
    bucket = page.nextBucket;
  }
}

describe('partition keys', () => {
  it('prefix the client key with the rank and keep the client key slot', () => {
    const out = new Uint8Array(partitionedKeyBytesMax);
    const key = enc.encode('{user}:42');
    const stored = tagKey(0x1234, key, out);
    expect(stored.length).toBe(key.length + 2);
    expect(partitionTagOf(stored)).toBe(0x1234);
    expect(dec.decode(untaggedKey(stored))).toBe('{user}:42');
    expect(slotOfTaggedKey(stored)).toBe(slotOfKey(key));
    expect(partitionTagOf(new Uint8Array(2))).toBe(-1);
  });
});

describe('DpmManagerCore.scanPartitions', () => {
  it("finds every key of the slots in other partitions, never the asker's own", () => {
    const { core, stored } = setup(40);
    const slots = [...new Set(stored.map((s) => slotOfKey(enc.encode(s.slice(2)))))].slice(0, 25);
    const wanted = new Set(slots);
    const expected = stored
      .filter((s) => !s.startsWith('1:') && wanted.has(slotOfKey(enc.encode(s.slice(2)))))
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    const { keys } = scanAll(core, 1, slots, 4096);
    expect(keys.sort()).toEqual(expected);
  });

  it('pages through the table without repeating or missing a key', () => {
    const { core, stored } = setup(60);
    const all = Array.from({ length: 16384 }, (_, slot) => slot);
    const whole = scanAll(core, 2, all, 4096);
    const paged = scanAll(core, 2, all, 5);
    expect(whole.keys.length).toBe(stored.filter((s) => !s.startsWith('2:')).length);
    expect(paged.pages).toBeGreaterThan(5);
    expect(paged.keys.sort()).toEqual(whole.keys.sort());
    expect(new Set(paged.keys).size).toBe(paged.keys.length);
  });

  it('starts over from bucket 0 when the table the cursor belongs to was replaced', () => {
    const { core, region } = setup(30);
    const all = Array.from({ length: 16384 }, (_, slot) => slot);
    const version = new IndexWriter(region).stats().version;
    const first = core.scanPartitions(0, undefined, all, version, 0, 3);
    const stale = core.scanPartitions(0, undefined, all, version + 1, first.nextBucket, 3);
    expect(stale.keys.map(named)).toEqual(first.keys.map(named));
  });

  it('refuses bad slots and page sizes, changing nothing', () => {
    const { core } = setup(1);
    const refused = (fn: () => unknown): string => {
      try {
        fn();
      } catch (err) {
        return isDinomoError(err) ? err.code : String(err);
      }
      return 'accepted';
    };
    expect(refused(() => core.scanPartitions(0, undefined, [16384], -1, 0, 8))).toBe(
      'INVALID_OPTION',
    );
    expect(refused(() => core.scanPartitions(0, undefined, [1.5], -1, 0, 8))).toBe(
      'INVALID_OPTION',
    );
    expect(refused(() => core.scanPartitions(0, undefined, [1], -1, 0, 0))).toBe('INVALID_OPTION');
    expect(refused(() => core.scanPartitions(0, undefined, [1], -1, 0, 5000))).toBe(
      'INVALID_OPTION',
    );
    expect(refused(() => core.scanPartitions(0, undefined, [1], -1, -1, 8))).toBe('INVALID_OPTION');
    expect(refused(() => core.scanPartitions(99, undefined, [1], -1, 0, 8))).not.toBe('accepted');
  });
});
