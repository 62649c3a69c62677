import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, type KvClient } from '../../src/index.js';

const MiB = 2 ** 20;
let cluster: Cluster | null = null;

afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

function start(mode: 'clover' | 'dinomo-n'): Promise<Cluster> {
  return Cluster.start({
    mode,
    kns: 1,
    threadsPerKn: 2,
    regionBytes: 64 * MiB,
    blockBytes: 2 * MiB,
    cacheBytesPerThread: 1 * MiB,
  }).then((c) => (cluster = c));
}

/** What each key should read as after the writes: its newest acknowledged value, or null. */
type Expected = Map<string, string | null>;

/**
 * `callers` concurrent callers, each with its own client and its own `keysPerCaller` keys: all
 * put a first version at once, then rewrite every other key and delete every fifth. Each caller's
 * phases are sequential, so the newest acknowledged operation on a key is its expected state.
 */
async function writeKeys(
  c: Cluster,
  prefix: string,
  callers: number,
  keysPerCaller: number,
): Promise<Expected> {
  const expected: Expected = new Map();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      const kv = c.client();
      const keys = Array.from({ length: keysPerCaller }, (_, i) => `${prefix}:c${caller}:k${i}`);
      await Promise.all(keys.map((key) => kv.put(key, `${key}=v1`)));
      for (const key of keys) expected.set(key, `${key}=v1`);
      await Promise.all(
        keys.map(async (key, i) => {
          if (i % 5 === 0) {
            // The key was written above, so the delete must find it.
            expect(await kv.delete(key), key).toBe(true);
            expected.set(key, null);
          } else if (i % 2 === 0) {
            await kv.put(key, `${key}=v2`);
            expected.set(key, `${key}=v2`);
          }
        }),
      );
    }),
  );
  return expected;
}

/** Reads every key from `readers` concurrent clients at once and compares with `expected`. */
async function expectReadable(c: Cluster, expected: Expected, readers = 3): Promise<void> {
  const clients: KvClient[] = Array.from({ length: readers }, () => c.client());
  await Promise.all(
    clients.map((kv) =>
      Promise.all(
        [...expected].map(async ([key, value]) =>
          expect((await kv.get(key))?.toString() ?? null, key).toBe(value),
        ),
      ),
    ),
  );
}

/**
 * Every caller writes its own value to the same keys at once; once all are acknowledged, every
 * read of a key, whichever thread serves it, must show the same one of those values.
 */
async function contendedKeys(c: Cluster, callers: number, keys: number): Promise<void> {
  const names = Array.from({ length: keys }, (_, i) => `shared:${i}`);
  await Promise.all(
    Array.from({ length: callers }, (_, caller) => {
      const kv = c.client();
      return Promise.all(names.map((key) => kv.put(key, `${key}@${caller}`)));
    }),
  );
  const kv = c.client();
  for (const key of names) {
    const reads = await Promise.all(Array.from({ length: 6 }, () => kv.get(key)));
    const seen = new Set(reads.map((r) => r?.toString() ?? null));
    expect(seen.size, `${key}: ${[...seen].join(', ')}`).toBe(1);
    expect([...seen][0]).toMatch(new RegExp(`^${key}@[0-${callers - 1}]$`));
  }
}

/** Operations served so far by each rank of the cluster. */
function opsByRank(c: Cluster): Map<number, number> {
  const ops = new Map<number, number>();
  for (const kn of c.stats().kns) for (const t of kn.threads) ops.set(t.rank, t.ops);
  return ops;
}

describe('baseline modes in the embedded cluster', () => {
  it('clover: spreads requests over every thread, reads back every write, caches only shortcuts, and adds and removes a KN', async () => {
    const c = await start('clover');
    const expected = await writeKeys(c, 'a', 4, 100);
    await contendedKeys(c, 4, 20);
    // Twice: the second pass finds the shortcuts the first one (and the writes) cached.
    await expectReadable(c, expected);
    await expectReadable(c, expected);

    const stats = c.stats();
    // Clover caches shortcuts only and never answers from its own unmerged log: a read always
    // costs at least the one RT of reading the version a shortcut points at.
    expect(stats.hits.shortcut).toBeGreaterThan(0);
    expect(stats.hits.value).toBe(0);
    expect(stats.hits.log).toBe(0);
    expect(stats.cache.values).toBe(0);
    expect(stats.cache.shortcuts).toBeGreaterThan(0);
    expect(stats.rts.perOp).toBeGreaterThanOrEqual(1);
    // Requests went round-robin over both threads, not to a slot owner.
    const before = opsByRank(c);
    expect(before.get(0)).toBeGreaterThan(500);
    expect(before.get(1)).toBeGreaterThan(500);

    // A new KN's threads join the spread at once; what either KN wrote reads back everywhere.
    const added = await c.addKn();
    expect(added.knId).toBe(2);
    expect(c.knIds()).toEqual([1, 2]);
    const more = await writeKeys(c, 'b', 4, 50);
    await expectReadable(c, expected);
    await expectReadable(c, more);
    const afterAdd = opsByRank(c);
    expect(afterAdd.get(2)).toBeGreaterThan(100);
    expect(afterAdd.get(3)).toBeGreaterThan(100);

    // The removed KN's threads leave the spread: the rest serve every key alone.
    await c.removeKn(1);
    expect(c.knIds()).toEqual([2]);
    await expectReadable(c, expected);
    await expectReadable(c, more);
    const afterRemove = opsByRank(c);
    expect(afterRemove.get(0)).toBe(afterAdd.get(0));
    expect(afterRemove.get(1)).toBe(afterAdd.get(1));
    expect(c.stats().hits.value).toBe(0);
  });

  it('dinomo-n: reads back every acknowledged put and delete, and copies keys when KNs join and leave', async () => {
    const c = await start('dinomo-n');
    const expected = await writeKeys(c, 'a', 4, 100);
    await contendedKeys(c, 4, 20);
    await expectReadable(c, expected);
    const stats = c.stats();
    expect(stats.ops.puts).toBeGreaterThanOrEqual(4 * 100);
    expect(stats.errors).toBe(0);
    const copied = (): number =>
      c.stats().kns.reduce((n, kn) => n + kn.threads.reduce((m, t) => m + t.keysCopied, 0), 0);
    expect(copied()).toBe(0);
    // The new KN's threads take half the slots: their keys move into the new threads' partitions.
    await c.addKn();
    const afterAdd = copied();
    expect(afterAdd).toBeGreaterThan(100);
    await expectReadable(c, expected);
    // Writes after the move land in the new owners' partitions.
    for (const key of [...expected.keys()].slice(0, 50)) {
      await c.client().put(key, `${key}=v3`);
      expected.set(key, `${key}=v3`);
    }
    // Removing the first KN moves its slots (and copies their keys) to the new KN's threads.
    await c.removeKn(1);
    expect(copied()).toBeGreaterThan(afterAdd);
    await expectReadable(c, expected);
    expect(c.stats().errors).toBe(0);
  });
});
