import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../../src/index.js';
import { pmemAvailable } from '../../src/util/native-addon.js';

const skipWhy = pmemAvailable()
  ? ''
  : ' (SKIPPED: the native addon is not built; `npm run build:native` needs g++, make and python3)';

// Said once per run, so a skipped native test never passes silently.
if (skipWhy !== '') console.warn(`test/integration/durability.test.ts${skipWhy}`);

const small = {
  kns: 1,
  threadsPerKn: 2,
  maxKns: 2,
  regionBytes: 48 * 2 ** 20,
  blockBytes: 2 ** 21,
  cacheBytesPerThread: 2 ** 20,
};
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dinomo-data-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipWhy !== '')(`file-backed region (dataDir)${skipWhy}`, () => {
  it('reopens the region on the next start: writes, overwrites and deletes survive', async () => {
    const dataDir = tempDir();
    const first = await Cluster.start({ ...small, dataDir });
    const kv = first.client();
    for (let i = 0; i < 300; i++) await kv.put(`key${i}`, `first${i}`);
    for (let i = 0; i < 300; i += 3) await kv.delete(`key${i}`);
    await first.stop();

    const second = await Cluster.start({ ...small, dataDir });
    const kv2 = second.client();
    for (let i = 0; i < 300; i++) {
      const expected = i % 3 === 0 ? null : `first${i}`;
      expect((await kv2.get(`key${i}`))?.toString() ?? null, `key${i}`).toBe(expected);
    }
    // A new run writes in a newer epoch: its writes win over the earlier run's versions.
    for (let i = 0; i < 300; i += 2) await kv2.put(`key${i}`, `second${i}`);
    await second.stop();

    const third = await Cluster.start({ ...small, dataDir });
    const kv3 = third.client();
    for (let i = 0; i < 300; i++) {
      const expected = i % 2 === 0 ? `second${i}` : i % 3 === 0 ? null : `first${i}`;
      expect((await kv3.get(`key${i}`))?.toString() ?? null, `key${i}`).toBe(expected);
    }
    await third.stop();
  }, 60_000);

  it("with durability 'sync' flushes every commit and the DPM's updates, and reopens", async () => {
    const dataDir = tempDir();
    const first = await Cluster.start({ ...small, dataDir, durability: 'sync' });
    const kv = first.client();
    for (let i = 0; i < 300; i++) await kv.put(`key${i}`, `sync${i}`);
    for (let i = 0; i < 300; i += 3) await kv.delete(`key${i}`);
    await first.stop();
    const stats = first.stats();
    // Sequential writes: every group commit flushed its batch (one persist, one flush).
    expect(stats.flushes.kn).toBeGreaterThan(0);
    expect(stats.flushes.kn).toBe(stats.flushes.persists);
    // The start (recovered region and epoch) and each block allocation flushed DPM-side state.
    expect(stats.flushes.dpm).toBeGreaterThan(0);
    expect(stats.kns[0]?.threads.every((t) => t.flushes === t.persists)).toBe(true);

    const second = await Cluster.start({ ...small, dataDir, durability: 'sync' });
    const kv2 = second.client();
    for (let i = 0; i < 300; i++) {
      const expected = i % 3 === 0 ? null : `sync${i}`;
      expect((await kv2.get(`key${i}`))?.toString() ?? null, `key${i}`).toBe(expected);
    }
    await second.stop();
  }, 60_000);

  it("with durability 'async' (the default) flushes nothing", async () => {
    const cluster = await Cluster.start({ ...small, dataDir: tempDir() });
    const kv = cluster.client();
    for (let i = 0; i < 100; i++) await kv.put(`key${i}`, `v${i}`);
    await cluster.stop();
    const { flushes } = cluster.stats();
    expect(flushes.persists).toBeGreaterThan(0);
    expect(flushes).toMatchObject({ kn: 0, dpm: 0 });
  }, 30_000);

  it('refuses a second cluster on the same dataDir and a different regionBytes', async () => {
    const dataDir = tempDir();
    const first = await Cluster.start({ ...small, dataDir });
    await expect(Cluster.start({ ...small, dataDir })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: expect.stringContaining('in use by process') as unknown,
    });
    await first.stop();
    await expect(
      Cluster.start({ ...small, regionBytes: 64 * 2 ** 20, dataDir }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  }, 30_000);

  it.each(['async', 'sync'] as const)(
    'keeps every acknowledged write when the process is killed with SIGKILL (durability %s)',
    async (durability) => {
      const dataDir = tempDir();
      const script = join(import.meta.dirname, '..', 'fixtures', 'durability-writer.mjs');
      const options = JSON.stringify({ ...small, dataDir, durability });
      const child = spawn(process.execPath, [script, options, '1000000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acked: number[] = [];
      const killAfter = 10_000;
      await new Promise<void>((resolve, reject) => {
        const lines = createInterface({ input: child.stdout });
        lines.on('line', (line) => {
          if (!line.startsWith('ack ')) return;
          acked.push(Number(line.slice(4)));
          if (acked.length === killAfter) child.kill('SIGKILL');
        });
        child.on('exit', (code, signal) =>
          signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited: ${code} ${signal}`)),
        );
      });
      expect(acked.length).toBeGreaterThanOrEqual(killAfter);

      const reopened = await Cluster.start({ ...small, dataDir, durability });
      const kv = reopened.client();
      const lost: number[] = [];
      for (const i of acked) {
        if ((await kv.get(`key${i}`))?.toString() !== `v${i}`) lost.push(i);
      }
      await reopened.stop();
      console.log(
        `kill -9 of the writer (${durability}): ${acked.length} acknowledged writes, ${lost.length} lost`,
      );
      expect(lost).toEqual([]);
    },
    60_000,
  );
});
