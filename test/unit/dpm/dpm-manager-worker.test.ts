import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKey } from '../../../src/util/hash.js';
import type { DpmToKnMessage, DpmToParentMessage } from '../../../src/dpm/dpm-protocol.js';
import { IndexReader } from '../../../src/dpm/index-reader.js';
import { Chain, Superblock, lsnOf } from '../../../src/dpm/layout.js';
import { chainRecordOffset, loadU64 } from '../../../src/dpm/region.js';
import { FakeKn, dec, dpmFabric, enc, makeRegion } from './dpm-test-kit.js';

/**
 * End to end through the real worker entry and a real piscina pool. Worker threads need compiled
 * JavaScript, so this compiles just the DPM worker and what it imports into out/ (gitignored), without
 * depending on the rest of the project compiling.
 */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const outDir = join(repoRoot, 'out', 'dpm-worker-test');

beforeAll(() => {
  mkdirSync(outDir, { recursive: true });
  const tsconfig = {
    extends: '../../tsconfig.json',
    compilerOptions: {
      noEmit: false,
      rootDir: '../../src',
      outDir: '.',
      declaration: false,
      sourceMap: false,
    },
    files: [
      '../../src/types/crc-32.d.ts',
      '../../src/dpm/dpm-manager-worker.ts',
      '../../src/dpm/merge-task.ts',
    ],
    include: [],
  };
  writeFileSync(join(outDir, 'tsconfig.json'), JSON.stringify(tsconfig));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(outDir, 'tsconfig.json')], { stdio: 'pipe' });
}, 120_000);

describe('dpm-manager-worker', () => {
  const region = makeRegion({ chains: 2, blocks: 4, indexBytes: 1024 * 1024 });
  let worker: Worker;
  let kn: MessagePort;
  const parentReplies: DpmToParentMessage[] = [];

  beforeAll(async () => {
    const url = pathToFileURL(join(outDir, 'dpm', 'dpm-manager-worker.js'));
    worker = new Worker(url, {
      workerData: { region: region.sab, mergeThreads: 2, mergeBatchEntries: 16 },
    });
    worker.on('message', (msg: DpmToParentMessage) => parentReplies.push(msg));
    await new Promise<void>((resolve, reject) => {
      worker.once('error', reject);
      worker.on('message', (msg: DpmToParentMessage) => {
        if (msg.type === 'ready') resolve();
      });
    });
    const channel = new MessageChannel();
    worker.postMessage({ type: 'attach', port: channel.port1 }, [channel.port1]);
    kn = channel.port2;
  });

  afterAll(async () => {
    kn.close();
    await worker.terminate();
  });

  function request(msg: unknown): Promise<DpmToKnMessage> {
    return new Promise((resolve) => {
      kn.once('message', (reply: DpmToKnMessage) => resolve(reply));
      kn.postMessage(msg);
    });
  }

  function parentRequest(msg: { type: 'stats' | 'stop'; id: number }): Promise<DpmToParentMessage> {
    return new Promise((resolve) => {
      const onMessage = (reply: DpmToParentMessage): void => {
        if ('id' in reply && reply.id === msg.id) {
          worker.off('message', onMessage);
          resolve(reply);
        }
      };
      worker.on('message', onMessage);
      worker.postMessage(msg);
    });
  }

  it('allocates, merges after a doorbell ring, and answers wait-merged', async () => {
    const alloc = await request({ type: 'alloc', id: 1, rank: 1 });
    expect(alloc).toMatchObject({ type: 'alloc-ok', id: 1, generation: 1, blockSeq: 0 });
    const block = alloc.type === 'alloc-ok' ? alloc.blockOffset : 0;
    const writer = new FakeKn(region, () => block, 1);
    for (let i = 0; i < 100; i++) writer.put(`key${i}`, `value${i}`, 1, i + 1);
    writer.commit();
    Atomics.add(region.i32, Superblock.doorbell / 4, 1);
    Atomics.notify(region.i32, Superblock.doorbell / 4);
    const target = lsnOf(writer.blockSeq, writer.committedBytes);
    const merged = await request({ type: 'wait-merged', id: 2, rank: 1, lsn: target });
    expect(merged).toEqual({ type: 'merged', id: 2, mergedLsn: target });
    const reader = new IndexReader(dpmFabric(region), region.geometry);
    for (let i = 0; i < 100; i++) {
      const key = enc.encode(`key${i}`);
      expect(reader.lookup(key, hashKey(key))).toBe(true);
      expect(dec.decode(reader.value)).toBe(`value${i}`);
    }
    const bad = await request({ type: 'wait-merged', id: 3, rank: 7, lsn: 1 });
    expect(bad).toMatchObject({ type: 'error', id: 3, code: 'INVALID_OPTION' });
  });

  it('keeps one-sided readers exact while merges and table growth run in other threads', async () => {
    const alloc = await request({ type: 'alloc', id: 20, rank: 0 });
    const block = alloc.type === 'alloc-ok' ? alloc.blockOffset : 0;
    const writer = new FakeKn(region, () => block, 0);
    const reader = new IndexReader(dpmFabric(region), region.geometry);
    const offsets: number[] = [];
    const mergedLsnAt = chainRecordOffset(region, 0) + Chain.mergedLsn;
    const batches = 40;
    for (let b = 0; b < batches; b++) {
      for (let i = 0; i < 100; i++)
        offsets.push(writer.put(`c${b * 100 + i}`, `x${b * 100 + i}`, 1, b * 100 + i + 1));
      writer.commit();
      Atomics.add(region.i32, Superblock.doorbell / 4, 1);
      Atomics.notify(region.i32, Superblock.doorbell / 4);
      // Every key whose entry is below the merge cursor must be found, while merges go on.
      const merged = loadU64(region, mergedLsnAt);
      offsets.forEach((at, n) => {
        if (lsnOf(writer.blockSeq, at - block) >= merged) return;
        const key = enc.encode(`c${n}`);
        expect(reader.lookup(key, hashKey(key))).toBe(true);
        expect(dec.decode(reader.value)).toBe(`x${n}`);
      });
    }
    const target = lsnOf(writer.blockSeq, writer.committedBytes);
    expect(await request({ type: 'wait-merged', id: 21, rank: 0, lsn: target })).toMatchObject({
      type: 'merged',
    });
    offsets.forEach((_, n) => {
      const key = enc.encode(`c${n}`);
      expect(reader.lookup(key, hashKey(key))).toBe(true);
    });
    expect(reader.geometryRefreshes).toBeGreaterThan(0);
  });

  it('reports stats and stops cleanly', async () => {
    const stats = await parentRequest({ type: 'stats', id: 10 });
    expect(stats).toMatchObject({
      type: 'stats-ok',
      stats: {
        space: { blocksTotal: 4, blocksFree: 2 },
        merges: { entriesMerged: 4100 },
        index: { entryCount: 4100 },
      },
    });
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    expect(await parentRequest({ type: 'stop', id: 11 })).toEqual({ type: 'stopped', id: 11 });
    expect(await exited).toBe(0);
  });
});
