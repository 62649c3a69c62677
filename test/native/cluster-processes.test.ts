import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorSystem, TcpLink, actorAddress, systemAddress } from '../../src/actors/index.js';
import { runCrashScenario } from '../../src/bench/crash-run.js';
import type { ClusterState } from '../../src/cluster/supervisor.js';
import type { MonitorServerMessage } from '../../src/cluster/monitor-protocol.js';
import { monitorActorName } from '../../src/kn/index.js';
import {
  decodeSlotMap,
  monitorSystemLocation,
  type RoutingTable,
} from '../../src/routing/index.js';
import { systemClock } from '../../src/time/index.js';
import { fabricAvailable, pmemAvailable } from '../../src/util/native-addon.js';

const run = promisify(execFile);
const cli = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

const skipWhy =
  fabricAvailable() && pmemAvailable()
    ? ''
    : ' (SKIPPED: the native addon is not built with its fabric part; it needs g++, make, python3 and `apt-get install -y libfabric-dev`, then `npm run build:native`)';

if (skipWhy !== '') console.warn(`test/native/cluster-processes.test.ts${skipWhy}`);

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'dinomo-cluster-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function readState(dataDir: string): ClusterState {
  return JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as ClusterState;
}

/** Asks the monitor of the cluster in `dataDir` directly, as a client's RN lookup does. */
async function monitorOf(dataDir: string): Promise<{
  routing(): Promise<RoutingTable>;
  leave(knId: number): Promise<null>;
}> {
  const state = readState(dataDir);
  const secret = readFileSync(state.secretFile ?? '', 'utf8').trim();
  const actors = ActorSystem.start({ node: 'test', process: process.pid, thread: 1 });
  const address = systemAddress(monitorSystemLocation);
  const link = new TcpLink(actors, { port: state.monitor.port, secret, expectedPeer: address });
  cleanups.push(() => actors.stop());
  cleanups.push(() => link.close());
  await link.waitUp(5000);
  const monitor = { address: actorAddress(address, monitorActorName) };
  return {
    routing: () =>
      link.ask<MonitorServerMessage, RoutingTable>(
        monitor,
        (replyTo) => ({ type: 'routing', replyTo }),
        5000,
      ),
    leave: (knId) =>
      link.ask<MonitorServerMessage, null>(
        monitor,
        (replyTo) => ({ type: 'leave', knId, replyTo }),
        30_000,
      ),
  };
}

/** Slots per owning rank in a routing table. */
function slotsByRank(table: RoutingTable): Map<number, number> {
  const owners = new Uint16Array(16384);
  decodeSlotMap(table.slotMap, owners);
  const counts = new Map<number, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/**
 * Runs `body`; if it throws, prints the last lines of every process log of the cluster in `dataDir`
 * first (the data directory is removed afterwards), so a failure in CI shows what the processes did.
 */
async function withLogsOnFailure<T>(dataDir: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    const logs = join(dataDir, 'logs');
    for (const name of existsSync(logs) ? readdirSync(logs) : []) {
      const lines = readFileSync(join(logs, name), 'utf8').trimEnd().split('\n');
      console.log(`--- ${name} (last 40 lines)\n${lines.slice(-40).join('\n')}`);
    }
    throw err;
  }
}

describe.skipIf(skipWhy !== '')(`a multi-process cluster (dinomo cluster up)${skipWhy}`, () => {
  it('loses no acknowledged write over 10^4 when the DPM and a KN are killed with kill -9', async () => {
    const dataDir = tempDir();
    cleanups.push(() => run(process.execPath, [cli, 'cluster', 'down', '--data-dir', dataDir]));
    const report = await withLogsOnFailure(dataDir, () =>
      runCrashScenario({
        dataDir,
        cli,
        kns: 2,
        threadsPerKn: 2,
        writes: 10_500,
        concurrency: 32,
        provider: 'shm',
        clock: systemClock,
        // The phases go to the test output, so a slow or stuck run shows where it was.
        log: (line) => console.log(`crash-run: ${line}`),
      }),
    );
    expect(report.acked).toBeGreaterThanOrEqual(10_500);
    expect(report.kills.map((k) => k.process)).toEqual(['dpm', 'kn']);
    expect(report.lost).toBe(0);
    expect(report.lostAfterRestart).toBe(0);
  }, 240_000);

  it('replaces a killed KN with one that is given slots, and moves the slots of a KN that leaves', async () => {
    const dataDir = tempDir();
    await run(process.execPath, [
      ...[cli, 'cluster', 'up', '--data-dir', dataDir, '--kns', '2'],
      ...['--region-bytes', '64MiB', '--block-bytes', '1MiB'],
    ]);
    cleanups.push(() => run(process.execPath, [cli, 'cluster', 'down', '--data-dir', dataDir]));
    const status = await run(process.execPath, [cli, 'cluster', 'status', '--data-dir', dataDir]);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, kns: [{}, {}] });
    const monitor = await monitorOf(dataDir);
    const before = readState(dataDir);
    const victim = before.kns[0];
    if (victim === undefined) throw new Error('no KN');
    process.kill(victim.pid, 'SIGKILL');

    // The supervisor starts a replacement; the monitor fails the dead KN over and gives the new
    // one about a third of the slots, so the dead KN's ranks own nothing.
    await vi.waitFor(() => expect(readState(dataDir).knReplacements).toBe(1), {
      timeout: 30_000,
    });
    const replacement = readState(dataDir).kns.find((k) => k.knId > 2);
    if (replacement === undefined) throw new Error('no replacement KN');
    await vi.waitFor(
      async () => {
        const counts = slotsByRank(await monitor.routing());
        for (const rank of victim.ranks) expect(counts.get(rank) ?? 0).toBe(0);
        const given = replacement.ranks.reduce((n, r) => n + (counts.get(r) ?? 0), 0);
        expect(given).toBeGreaterThan(16384 / 4);
      },
      { timeout: 30_000, interval: 200 },
    );

    // The replacement leaves: its slots move to the survivor, and its process exits.
    await monitor.leave(replacement.knId);
    const counts = slotsByRank(await monitor.routing());
    for (const rank of replacement.ranks) expect(counts.get(rank) ?? 0).toBe(0);
    const table = await monitor.routing();
    expect(table.endpoints.every((e) => e.knId !== replacement.knId)).toBe(true);
    await vi.waitFor(
      () => expect(readState(dataDir).kns.map((k) => k.knId)).not.toContain(replacement.knId),
      {
        timeout: 30_000,
      },
    );
    expect(readState(dataDir).knReplacements).toBe(1);
  }, 120_000);
});
