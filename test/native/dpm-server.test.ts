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
  type ReplyTo,
} from '../../src/actors/index.js';
import { DpmServer } from '../../src/cluster/dpm-server.js';
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
  extraArgs: string[] = [],
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
      ...extraArgs,
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

/** The M-node's view of a DPM server: its actor, asked directly. */
async function monitorOf(port: number, thread: number) {
  const monitor = ActorSystem.start({ node: 'monitor-test', process: process.pid, thread });
  cleanups.push(() => monitor.stop());
  await connectTcpTransport(monitor, { port, secret });
  const dpmRef = monitor.remoteRef<DpmServerMessage>(
    actorAddress(systemAddress(dpmSystemLocation), dpmActorName),
  );
  const ask = <T>(make: (replyTo: ReplyTo<T>) => DpmServerMessage): Promise<T> =>
    monitor.ask<DpmServerMessage, T>(dpmRef, make, 10_000);
  return {
    ask,
    readMap: () =>
      ask<{ epoch: number; slotMap: Uint8Array }>((replyTo) => ({ type: 'read-map', replyTo })),
    incarnation: (rank: number) =>
      ask<number>((replyTo) => ({ type: 'incarnation', rank, replyTo })),
    grant: (rank: number, incarnation: number) =>
      ask<FabricGrant>((replyTo) => ({ type: 'grant', rank, incarnation, replyTo })),
    alloc: (rank: number, incarnation: number) =>
      ask<number>((replyTo) => ({ type: 'alloc', rank, incarnation, replyTo })),
    failover: (rank: number, incarnation: number) =>
      ask<number>((replyTo) => ({ type: 'failover', rank, incarnation, replyTo })),
  };
}

/** A slot map as `read-map` and `write-map` carry it: 16384 owners as u16 little-endian. */
function slotMapBytes(owner: (slot: number) => number): Uint8Array {
  const bytes = new Uint8Array(16384 * 2);
  const view = new DataView(bytes.buffer);
  for (let slot = 0; slot < 16384; slot++) view.setUint16(slot * 2, owner(slot), true);
  return bytes;
}

function ownersOf(slotMap: Uint8Array): number[] {
  const view = new DataView(slotMap.buffer, slotMap.byteOffset, slotMap.byteLength);
  return Array.from({ length: slotMap.byteLength / 2 }, (_, slot) =>
    view.getUint16(slot * 2, true),
  );
}

async function killDpm(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL');
  await new Promise((done) => child.once('exit', done));
}

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
    await kn.fabric.reconnect();
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

  it('reads and writes the slot map and epoch, refuses invalid writes, and keeps them across kill -9', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dinomo-dpm-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startDpm(dataDir);
    const monitor = await monitorOf(first.port, 0);
    const fresh = await monitor.readMap();
    expect(fresh.slotMap.byteLength).toBe(16384 * 2);
    expect(new Set(ownersOf(fresh.slotMap))).toEqual(new Set([0xffff]));
    const epoch0 = fresh.epoch;

    const writeOwners = (slots: number[], owner: number, epoch: number) =>
      monitor.ask<null>((replyTo) => ({ type: 'write-owners', slots, owner, epoch, replyTo }));
    const writeMap = (slotMap: Uint8Array, epoch: number) =>
      monitor.ask<null>((replyTo) => ({ type: 'write-map', slotMap, epoch, replyTo }));
    await expect(
      writeMap(
        slotMapBytes((slot) => slot % 4),
        epoch0 + 1,
      ),
    ).resolves.toBeNull();
    await expect(writeOwners([0, 1, 2, 16383], 3, epoch0 + 2)).resolves.toBeNull();
    const expected = ownersOf(slotMapBytes((slot) => slot % 4));
    for (const slot of [0, 1, 2, 16383]) expected[slot] = 3;
    const written = await monitor.readMap();
    expect(written.epoch).toBe(epoch0 + 2);
    expect(ownersOf(written.slotMap)).toEqual(expected);

    // Invalid requests are refused, and change nothing.
    const invalid = { code: 'INVALID_OPTION' };
    await expect(writeOwners([5, 16384], 1, epoch0 + 3)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5, -1], 1, epoch0 + 3)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5, 1.5], 1, epoch0 + 3)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5], 4, epoch0 + 3)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5], -1, epoch0 + 3)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5], 1, epoch0 + 1)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5], 1, -1)).rejects.toMatchObject(invalid);
    await expect(writeOwners([5], 1, 2.5)).rejects.toMatchObject(invalid);
    await expect(writeOwners('all' as unknown as number[], 1, epoch0 + 3)).rejects.toMatchObject(
      invalid,
    );
    await expect(writeMap(new Uint8Array(100), epoch0 + 3)).rejects.toMatchObject(invalid);
    await expect(
      writeMap(
        slotMapBytes(() => 7),
        epoch0 + 3,
      ),
    ).rejects.toMatchObject(invalid);
    await expect(
      writeMap(
        slotMapBytes(() => 1),
        epoch0,
      ),
    ).rejects.toMatchObject(invalid);
    const unchanged = await monitor.readMap();
    expect(unchanged.epoch).toBe(epoch0 + 2);
    expect(ownersOf(unchanged.slotMap)).toEqual(expected);
    // The same epoch again is fine (a retried write).
    await writeOwners([5], 3, epoch0 + 2);
    expected[5] = 3;

    await killDpm(first.child);
    const second = await startDpm(dataDir);
    expect(second.reopened).toBe(true);
    const again = await monitorOf(second.port, 1);
    const reopened = await again.readMap();
    expect(reopened.epoch).toBe(epoch0 + 2);
    expect(ownersOf(reopened.slotMap)).toEqual(expected);
  });

  it('answers the incarnation a takeover needs, and keeps refusing a fenced one after kill -9', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dinomo-dpm-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startDpm(dataDir);
    const monitor = await monitorOf(first.port, 0);
    expect(await monitor.incarnation(1)).toBe(0);
    await expect(monitor.incarnation(4)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(monitor.incarnation(-1)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await monitor.grant(1, 0);
    expect(await monitor.alloc(1, 0)).toBeGreaterThan(0);

    await monitor.failover(1, 0);
    expect(await monitor.incarnation(1)).toBe(1);
    // A repeated failover of the same incarnation fences nothing more.
    await monitor.failover(1, 0);
    expect(await monitor.incarnation(1)).toBe(1);
    expect(await monitor.incarnation(0)).toBe(0);
    await expect(monitor.grant(1, 0)).rejects.toMatchObject({ code: 'FENCED' });
    await expect(monitor.alloc(1, 0)).rejects.toMatchObject({ code: 'FENCED' });
    await monitor.grant(1, 1);

    await killDpm(first.child);
    const second = await startDpm(dataDir);
    const again = await monitorOf(second.port, 1);
    expect(await again.incarnation(1)).toBe(1);
    expect(await again.incarnation(0)).toBe(0);
    await expect(again.grant(1, 0)).rejects.toMatchObject({ code: 'FENCED' });
    await expect(again.alloc(1, 0)).rejects.toMatchObject({ code: 'FENCED' });
    await again.grant(1, 1);
    expect(await again.alloc(1, 1)).toBeGreaterThan(0);
    // Failing over the new incarnation moves the answer on again.
    await again.failover(1, 1);
    expect(await again.incarnation(1)).toBe(2);
  });

  it("merges a remote KN thread's commits without a doorbell ring or a merge wait", async () => {
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
    const reader = new IndexReader(kn.fabric, kn.description.geometry);
    const lags: number[] = [];
    for (let i = 0; i < 10; i++) {
      const key = encode(`lag${i}`);
      log.append(EntryOp.put, key, encode(`value${i}`), 1, i + 1);
      log.commit();
      // Only the manager's idle re-check can find this commit: nothing rings, nobody waits.
      const started = performance.now();
      while (!reader.lookup(key, hashKey(key))) {
        if (performance.now() - started > 2000) throw new Error(`lag${i} was not merged in 2 s`);
        await new Promise((done) => setTimeout(done, 1));
      }
      lags.push(performance.now() - started);
    }
    expect(Math.max(...lags)).toBeLessThan(2000);
    console.info(`commit-to-index lag (ms): ${lags.map((lag) => lag.toFixed(1)).join(' ')}`);
  });

  it('starts with --durability sync, and refuses an unknown durability', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'dinomo-dpm-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await startDpm(dataDir, ['--durability', 'sync']);
    const kn = await connect(first.port, 1);
    const log = new LogWriter(kn.fabric, kn.control, {
      rank: 0,
      blockBytes: kn.description.geometry.blockBytes,
      recentBlocks: 4,
      ringDoorbell: () => undefined,
      onMirrorRetired: () => undefined,
    });
    await log.start();
    for (let i = 0; i < 20; i++) {
      log.append(EntryOp.put, encode(`key${i}`), encode(`value${i}`), 1, i + 1);
    }
    log.commit();
    const lsn = log.committedLsn;
    expect(await kn.control.waitMerged(0, lsn)).toBeGreaterThanOrEqual(lsn);
    const monitor = await monitorOf(first.port, 0);
    const { epoch } = await monitor.readMap();
    const map = slotMapBytes((slot) => slot % 2);
    await monitor.ask<null>((replyTo) => ({
      type: 'write-map',
      slotMap: map,
      epoch: epoch + 1,
      replyTo,
    }));
    await killDpm(first.child);
    const second = await startDpm(dataDir, ['--durability', 'sync']);
    expect(second.reopened).toBe(true);
    const again = await monitorOf(second.port, 1);
    const reopened = await again.readMap();
    expect(reopened.epoch).toBe(epoch + 1);
    expect(ownersOf(reopened.slotMap)).toEqual(ownersOf(map));
    const knAgain = await connect(second.port, 2);
    expect(lookupAll(new IndexReader(knAgain.fabric, knAgain.description.geometry), 20)).toBe(20);

    // The CLI refuses an unknown mode with a usage error; DpmServer.start with INVALID_OPTION.
    const bogus = spawn(
      process.execPath,
      ['dist/cli/main.js', 'dpm', '--data-dir', dataDir, '--durability', 'bogus'],
      { env: { ...process.env, DINOMO_SECRET: secret }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(() => bogus.kill('SIGKILL'));
    let stderr = '';
    bogus.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((done) => bogus.once('exit', done));
    expect(stderr).toContain('--durability must be async or sync (got "bogus")');
    expect(code).toBe(2);
    await expect(
      DpmServer.start({
        dataDir,
        regionBytes: 32 * 2 ** 20,
        blockBytes: 2 ** 20,
        ranks: 4,
        provider: 'shm',
        secret,
        durability: 'bogus' as 'sync',
      }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
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
