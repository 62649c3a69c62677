import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, isDinomoError, type KvClient } from '../../src/index.js';
import { indexValue, waitForMerges } from './helpers.js';

const MiB = 2 ** 20;
let cluster: Cluster | null = null;

afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

function start(options: Parameters<typeof Cluster.start>[0]): Promise<Cluster> {
  return Cluster.start(options).then((c) => (cluster = c));
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (err) {
    return isDinomoError(err) ? err.code : `not a DinomoError: ${String(err)}`;
  }
}

/** Values are unique per write, so a stale read is always detectable. */
const valueOf = (key: number, version: number): string =>
  `k${key}-v${version}-${'p'.repeat(key % 300)}`;

describe('embedded cluster', () => {
  it('reads back every acknowledged write from several concurrent clients; deletes stick; merges catch up', async () => {
    const c = await start({
      threadsPerKn: 2,
      regionBytes: 96 * MiB,
      blockBytes: 2 * MiB,
      cacheBytesPerThread: 256 * 1024, // Small: values must survive DAC eviction.
    });
    const clients: KvClient[] = [c.client(), c.client(), c.client(), c.client()];
    const keys = 12_000;
    const newest = new Map<number, number | null>();
    // Each client owns a quarter of the keys and rewrites them, deleting some, all concurrently.
    await Promise.all(
      clients.map(async (kv, ci) => {
        for (let version = 1; version <= 4; version++) {
          const writes: Array<Promise<unknown>> = [];
          for (let key = ci; key < keys; key += clients.length) {
            if (version === 4 && key % 7 === 0) {
              writes.push(kv.delete(`key:${key}`).then((existed) => expect(existed).toBe(true)));
              newest.set(key, null);
            } else {
              writes.push(kv.put(`key:${key}`, valueOf(key, version)));
              newest.set(key, version);
            }
          }
          await Promise.all(writes);
        }
      }),
    );
    const check = async (): Promise<number> => {
      let wrong = 0;
      await Promise.all(
        [...newest].map(async ([key, version]) => {
          const got = await clients[key % clients.length]?.get(`key:${key}`);
          const want = version === null ? null : valueOf(key, version);
          if ((got === null || got === undefined ? null : got.toString()) !== want) wrong++;
        }),
      );
      return wrong;
    };
    expect(await check()).toBe(0);
    // Filler writes push the KN threads' local log copies past the tested keys, so the reads below
    // must come from the DAC, shortcuts or the index.
    const filler: Array<Promise<void>> = [];
    for (let i = 0; i < 24_000; i++)
      filler.push((clients[i % 4] as KvClient).put(`filler:${i}`, 'f'.repeat(400)));
    await Promise.all(filler);
    expect(await check()).toBe(0);
    await waitForMerges(c);
    // After a quiet period the index alone holds the newest version of every key.
    let indexWrong = 0;
    for (const [key, version] of newest) {
      if (indexValue(c, `key:${key}`) !== (version === null ? null : valueOf(key, version)))
        indexWrong++;
    }
    expect(indexWrong).toBe(0);
    expect(await check()).toBe(0);
    const s = c.stats();
    expect(s.ops.puts).toBe(keys * 4 - Math.ceil(keys / 7) + 24_000);
    expect(s.hits.miss + s.hits.shortcut).toBeGreaterThan(0); // Eviction really happened.
    expect(s.cache.bytesUsed).toBeLessThanOrEqual(s.cache.capacityBytes);
    expect(s.errors).toBe(0);
  });

  it('answers a delete of an absent key with false and stores nothing', async () => {
    const c = await start({ threadsPerKn: 1, regionBytes: 32 * MiB, blockBytes: 2 * MiB });
    const kv = c.client();
    expect(await kv.delete('never-written')).toBe(false);
    await kv.put('a', '1');
    expect(await kv.delete('a')).toBe(true);
    expect(await kv.delete('a')).toBe(false);
    expect(await kv.get('a')).toBeNull();
    expect(c.stats().ops.puts).toBe(1);
  });

  it('refuses bad input with a clear code and stores nothing', async () => {
    const c = await start({ threadsPerKn: 2, regionBytes: 32 * MiB, blockBytes: 2 * MiB });
    const kv = c.client();
    const untyped = kv as unknown as Record<
      'put' | 'get' | 'delete',
      (...a: unknown[]) => Promise<unknown>
    >;
    expect(await codeOf(kv.put('', 'v'))).toBe('INVALID_KEY');
    expect(await codeOf(kv.put('x'.repeat(1025), 'v'))).toBe('INVALID_KEY');
    expect(await codeOf(kv.put('big', new Uint8Array(MiB + 1)))).toBe('INVALID_VALUE');
    expect(await codeOf(untyped.put(42, 'v'))).toBe('INVALID_KEY');
    expect(await codeOf(untyped.put('k', 42))).toBe('INVALID_VALUE');
    expect(await codeOf(untyped.put('k', { a: 1 }))).toBe('INVALID_VALUE');
    expect(await codeOf(untyped.get(null))).toBe('INVALID_KEY');
    expect(await codeOf(untyped.delete(undefined))).toBe('INVALID_KEY');
    expect(c.stats().ops.total).toBe(0); // Nothing reached a KN thread.
    expect(await kv.get('big')).toBeNull();
    expect(await kv.get('k')).toBeNull();
    // The limits themselves are accepted.
    await kv.put('x'.repeat(1024), new Uint8Array(MiB));
    expect((await kv.get('x'.repeat(1024)))?.length).toBe(MiB);
  });

  it('keeps every DAC within cacheBytesPerThread with many keys', async () => {
    const cacheBytesPerThread = 128 * 1024;
    const c = await start({
      threadsPerKn: 2,
      regionBytes: 64 * MiB,
      blockBytes: 2 * MiB,
      cacheBytesPerThread,
    });
    const kv = c.client();
    for (let round = 0; round < 4; round++) {
      const ops: Array<Promise<unknown>> = [];
      for (let i = 0; i < 10_000; i++) {
        const key = `m:${(i * 7919 + round) % 20_000}`;
        ops.push(round % 2 === 0 ? kv.put(key, 'v'.repeat(50 + (i % 500))) : kv.get(key));
      }
      await Promise.all(ops);
      for (const kn of c.stats().kns) {
        for (const t of kn.threads) {
          expect(t.cacheCapacityBytes).toBe(cacheBytesPerThread);
          expect(t.cacheBytesUsed).toBeLessThanOrEqual(cacheBytesPerThread);
          expect(t.cacheBytesUsed).toBeGreaterThan(cacheBytesPerThread / 2);
        }
      }
    }
  });

  it('serves misses in 2 RTs and shortcut hits in 1 RT', async () => {
    const c = await start({
      threadsPerKn: 1,
      regionBytes: 32 * MiB,
      blockBytes: 2 * MiB,
      cacheBytesPerThread: 0,
    });
    const kv = c.client();
    for (let i = 0; i < 200; i++) await kv.put(`r:${i}`, `value-${i}`);
    await waitForMerges(c);
    // With no cache, and once the thread's recent log copies are retired, every read is an index miss.
    const before = c.stats();
    for (let i = 0; i < 200; i++) expect((await kv.get(`r:${i}`))?.toString()).toBe(`value-${i}`);
    const after = c.stats();
    const misses = after.hits.miss - before.hits.miss;
    const logHits = after.hits.log - before.hits.log;
    expect(misses + logHits).toBe(200);
    if (misses > 0) expect((after.rts.total - before.rts.total) / misses).toBeLessThanOrEqual(2);
  });

  it('rejects operations after stop with CLOSED, and impossible reconfiguration with a clear code', async () => {
    const c = await start({ threadsPerKn: 1, regionBytes: 32 * MiB, blockBytes: 2 * MiB });
    const kv = c.client();
    await kv.put('a', '1');
    expect(await codeOf(c.failKn(1))).toBe('INVALID_OPTION'); // the last KN
    expect(await codeOf(c.removeKn(7))).toBe('INVALID_OPTION'); // no such KN
    await c.stop();
    expect(await codeOf(c.addKn())).toBe('CLOSED');
    cluster = null;
    expect(await codeOf(kv.get('a'))).toBe('CLOSED');
  });

  it('acknowledges writes issued right before stop, and refuses later ones with CLOSED', async () => {
    const c = await start({
      threadsPerKn: 2,
      regionBytes: 32 * MiB,
      blockBytes: 2 * MiB,
      groupCommitUs: 50_000,
    });
    const kv = c.client();
    // A long commit window: these writes are staged, not yet committed, when stop begins.
    const writes = Array.from({ length: 500 }, (_, i) => kv.put(`s:${i}`, `v${i}`));
    const stopping = c.stop();
    const late = codeOf(kv.put('late', 'x')); // Observed at once: it is refused synchronously.
    await stopping;
    cluster = null;
    const results = await Promise.allSettled(writes);
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await late).toBe('CLOSED');
    expect(c.stats().ops.puts).toBe(500);
    expect(c.stats().dpm.unmergedBytes).toBe(0); // The DPM merged everything before it stopped.
  });

  it('refuses bad options before starting anything', async () => {
    expect(await codeOf(Cluster.start({ kns: 0 }))).toBe('INVALID_OPTION');
    expect(await codeOf(Cluster.start({ blockBytes: 12345 }))).toBe('INVALID_OPTION');
    expect(await codeOf(Cluster.start({ dataDir: '' }))).toBe('INVALID_OPTION');
  });
});
