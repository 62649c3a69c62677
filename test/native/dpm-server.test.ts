import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ActorSystem,
  actorAddress,
  connectTcpTransport,
  systemAddress,
} from '../../src/actors/index.js';
import {
  dpmActorName,
  dpmSystemLocation,
  type DpmServerMessage,
} from '../../src/dpm/dpm-server-protocol.js';
import { Block } from '../../src/dpm/layout.js';
import { EntryOp } from '../../src/dpm/log-entry.js';
import { IndexReader } from '../../src/dpm/index.js';
import { NativeFabric, type FabricGrant } from '../../src/fabric/index.js';
import { ActorDpmControl } from '../../src/kn/actor-dpm-control.js';
import { LogWriter } from '../../src/kn/log-writer.js';
import { hashKey } from '../../src/util/hash.js';
import { fabricAvailable, pmemAvailable } from '../../src/util/native-addon.js';

const skipWhy =
  fabricAvailable() && pmemAvailable()
    ? ''
    : ' (SKIPPED: the native addon is not built with its fabric part; it needs g++, make, python3 and `apt-get install -y libfabric-dev`, then `npm run build:native`)';

if (skipWhy !== '') console.warn(`test/native/dpm-server.test.ts${skipWhy}`);

const secret = 'a test cluster secret of some length';
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts `dinomo dpm` on `dataDir` and resolves with its control port once it is ready. */
async function startDpm(
  dataDir: string,
): Promise<{ child: ChildProcess; port: number; reopened: boolean }> {
  const child = spawn(
    process.execPath,
    [
      'dist/cli/main.js',
      'dpm',
      '--data-dir',
      dataDir,
      '--region-bytes',
      '32MiB',
      '--block-bytes',
      '1MiB',
      '--ranks',
      '4',
    ],
    { env: { ...process.env, DINOMO_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanups.push(() => child.kill('SIGKILL'));
  let errors = '';
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done === true) throw new Error(`dinomo dpm exited: ${errors}`);
  const ready = JSON.parse(first.value) as { port: number; reopened: boolean };
  return { child, port: ready.port, reopened: ready.reopened };
}

/** A KN-side connection to a DPM server: actor system, control, fabric (rank 0, incarnation 0). */
async function connect(port: number, thread: number) {
  const system = ActorSystem.start({ node: 'kn-test', process: process.pid, thread });
  cleanups.push(() => system.stop());
  await connectTcpTransport(system, { port, secret });
  const control = new ActorDpmControl(system, 0, 10_000);
  const description = await control.describe();
  let grant: FabricGrant = await control.grant(0);
  const fabric = new NativeFabric({ grant, regrant: () => grant, timeoutMs: 1000 });
  cleanups.push(() => fabric.close());
  return { system, control, description, fabric, setGrant: (g: FabricGrant) => (grant = g) };
}

const encode = (text: string) => new TextEncoder().encode(text);

function lookupAll(reader: IndexReader, count: number): number {
  let found = 0;
  for (let i = 0; i < count; i++) {
    const key = encode(`key${i}`);
    if (
      reader.lookup(key, hashKey(key)) &&
      new TextDecoder().decode(reader.value) === `value${i}`
    ) {
      found++;
    }
  }
  return found;
}

describe.skipIf(skipWhy !== '')(`dinomo dpm (a DPM server process)${skipWhy}`, () => {
  it('takes a KN thread log over the fabric, merges it, and keeps it across kill -9', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dinomo-dpm-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startDpm(dataDir);
    expect(first.reopened).toBe(false);
    const kn = await connect(first.port, 1);
    const log = new LogWriter(kn.fabric, kn.control, {
      rank: 0,
      blockBytes: kn.description.geometry.blockBytes,
      recentBlocks: 4,
      ringDoorbell: () => undefined,
      onMirrorRetired: () => undefined,
    });
    await log.start();
    const count = 200;
    for (let i = 0; i < count; i++) {
      log.append(EntryOp.put, encode(`key${i}`), encode(`value${i}`), 1, i + 1);
      if (i % 50 === 49) log.commit();
    }
    const lsn = log.committedLsn;
    expect(await kn.control.waitMerged(0, lsn)).toBeGreaterThanOrEqual(lsn);
    const reader = new IndexReader(kn.fabric, kn.description.geometry);
    expect(lookupAll(reader, count)).toBe(count);
    // More committed (acknowledged) writes that the DPM has not merged when it is killed.
    for (let i = count; i < 2 * count; i++) {
      log.append(EntryOp.put, encode(`key${i}`), encode(`value${i}`), 1, i + 1);
    }
    log.commit();

    // kill -9 the DPM: the KN's fabric breaks; a new DPM process recovers the region from the file.
    first.child.kill('SIGKILL');
    await new Promise((done) => first.child.once('exit', done));
    expect(() => kn.fabric.read64(0)).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
    const second = await startDpm(dataDir);
    expect(second.reopened).toBe(true);
    const again = await connect(second.port, 2);
    kn.setGrant(await again.control.grant(0));
    kn.fabric.reconnect();
    // Recovery merges the unmerged tail: every committed write ends up in the index.
    const after = new IndexReader(kn.fabric, again.description.geometry);
    await vi.waitFor(() => expect(lookupAll(after, 2 * count)).toBe(2 * count), {
      timeout: 10_000,
    });
  });

  it("revokes a failed-over KN thread's access: its next write fails and the file stays as it was", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dinomo-dpm-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const dpm = await startDpm(dataDir);
    const kn = await connect(dpm.port, 1);
    const log = new LogWriter(kn.fabric, kn.control, {
      rank: 0,
      blockBytes: kn.description.geometry.blockBytes,
      recentBlocks: 4,
      ringDoorbell: () => undefined,
      onMirrorRetired: () => undefined,
    });
    await log.start();
    log.append(EntryOp.put, encode('before'), encode('fence'), 1, 1);
    log.commit();
    // The M-node declares the thread failed: the DPM revokes its registration, then merges its chain.
    const monitor = ActorSystem.start({ node: 'monitor-test', process: process.pid, thread: 0 });
    cleanups.push(() => monitor.stop());
    await connectTcpTransport(monitor, { port: dpm.port, secret });
    const dpmRef = monitor.remoteRef<DpmServerMessage>(
      actorAddress(systemAddress(dpmSystemLocation), dpmActorName),
    );
    await monitor.ask<DpmServerMessage, number>(
      dpmRef,
      (replyTo) => ({ type: 'failover', rank: 0, incarnation: 0, replyTo }),
      10_000,
    );
    const block = log.currentBlockOffset;
    const blockBytes = kn.description.geometry.blockBytes;
    const before = readFileRange(join(dataDir, 'region.dpm'), block, blockBytes);
    log.append(EntryOp.put, encode('after'), encode('fence'), 1, 2);
    expect(() => log.commit()).toThrow(expect.objectContaining({ code: 'UNAVAILABLE' }));
    // What the KN writes in a block: the entries after the header, and the commit word. (The DPM
    // keeps updating the block's state and live counts in the header as it finishes merging.)
    const after = readFileRange(join(dataDir, 'region.dpm'), block, blockBytes);
    const kept = (b: Buffer) => [
      b.subarray(Block.commitWord, Block.commitWord + 8),
      b.subarray(Block.headerBytes),
    ];
    expect(kept(after)).toEqual(kept(before));
    expect(after.subarray(Block.headerBytes).some((byte) => byte !== 0)).toBe(true);
    // The fenced incarnation gets neither a new grant nor a block.
    await expect(kn.control.grant(0)).rejects.toMatchObject({ code: 'FENCED' });
    await expect(kn.control.allocBlock(0)).rejects.toMatchObject({ code: 'FENCED' });
  });
});

function readFileRange(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const out = Buffer.alloc(length);
    readSync(fd, out, 0, length, offset);
    return out;
  } finally {
    closeSync(fd);
  }
}
