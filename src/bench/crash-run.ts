import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type ClusterClient } from '../client/index.js';
import { DinomoError, isDinomoError } from '../errors/index.js';
import type { Clock } from '../time/index.js';

const run = promisify(execFile);
/** A cluster that acknowledges nothing this long after a kill has not recovered. */
const recoveryTimeoutMs = 60_000;
/** Reading back every acknowledged write takes seconds on a healthy cluster. */
const readBackTimeoutMs = 60_000;

export interface CrashRunOptions {
  /** An empty directory (absolute) for the cluster. */
  dataDir: string;
  /** The CLI script (dist/cli/main.js) that runs `cluster up` and `cluster down`. */
  cli: string;
  kns: number;
  threadsPerKn: number;
  /** Stop writing once this many writes were acknowledged. */
  writes: number;
  /** Writers in flight. */
  concurrency: number;
  provider: 'shm' | 'tcp';
  clock: Clock;
  /** Progress lines (phase changes). */
  log?: (line: string) => void;
}

/** One kill -9 and how long the cluster took to acknowledge writes again. */
export interface KillReport {
  process: 'dpm' | 'kn';
  pid: number;
  /** Acknowledged writes when the process was killed. */
  atAcked: number;
  /** From the kill to the first acknowledgement of a write issued after it. */
  recoveryMs: number;
  /**
   * From the kill to the last failed write before the next phase: how long some keys were not
   * writable (a dead KN's slots wait for the lease to end, the fence and the merge).
   */
  lastFailureMs: number | null;
}

export interface CrashRunReport {
  kns: number;
  threadsPerKn: number;
  provider: 'shm' | 'tcp';
  /** Writes the cluster acknowledged (each a distinct key). */
  acked: number;
  /** Writes that failed: not acknowledged, so they may or may not have taken effect. */
  unacked: number;
  unackedByCode: Record<string, number>;
  kills: KillReport[];
  /** Acknowledged writes whose value was not read back, right after the run. */
  lost: number;
  /** Acknowledged writes not read back after `cluster down` and a new `cluster up`. */
  lostAfterRestart: number;
  /** Up to 10 of the lost keys, with what was read instead. */
  lostKeys: string[];
  writeSeconds: number;
  ackedPerSecond: number;
}

interface State {
  url: string;
  secretFile: string | null;
  dpm: { pid: number; restarts: number };
  kns: Array<{ pid: number; knId: number }>;
}

/**
 * The multi-process durability run (issue 5's Must-show): a cluster of real processes (`dinomo
 * cluster up`), a write load from this process, `kill -9` of the DPM a third of the way in and of
 * a KN two thirds in, then every acknowledged write is read back, and again after the whole
 * cluster was stopped and started on the same data directory. Writes use distinct keys, so
 * "read back" means exactly the value that was acknowledged.
 */
export async function runCrashScenario(o: CrashRunOptions): Promise<CrashRunReport> {
  const log = o.log ?? (() => {});
  const lostKeys: string[] = [];
  const { load, kills, lost, writeSeconds } = await withCluster(o, async (state) => {
    const client = await connectTo(state);
    try {
      return await writeAndKill(o, client, log, lostKeys);
    } finally {
      await client.close();
    }
  });
  log('cluster down and up again on the same data directory; reading back');
  const lostAfterRestart = await withCluster(o, async (state) => {
    const client = await connectTo(state);
    try {
      return await countLost(client, load.acked, lostKeys, o.clock, log);
    } finally {
      await client.close();
    }
  });
  return {
    kns: o.kns,
    threadsPerKn: o.threadsPerKn,
    provider: o.provider,
    acked: load.acked.length,
    unacked: load.unacked,
    unackedByCode: Object.fromEntries(load.unackedByCode),
    kills,
    lost,
    lostAfterRestart,
    lostKeys,
    writeSeconds,
    ackedPerSecond: load.acked.length / writeSeconds,
  };
}

/** The write load with its two kills, then the read-back of every acknowledged write. */
async function writeAndKill(
  o: CrashRunOptions,
  client: ClusterClient,
  log: (line: string) => void,
  lostKeys: string[],
): Promise<{ load: WriteLoad; kills: KillReport[]; lost: number; writeSeconds: number }> {
  const load = new WriteLoad(client, o.clock, o.concurrency);
  const startUs = o.clock.nowUs();
  const kills: KillReport[] = [];
  try {
    load.start();
    await load.until(Math.floor(o.writes / 3));
    log(`kill -9 of the DPM at ${load.acked.length} acknowledged writes`);
    kills.push(await load.kill('dpm', readState(o.dataDir).dpm.pid));
    await load.until(Math.floor((2 * o.writes) / 3));
    const kn = readState(o.dataDir).kns[0];
    if (kn === undefined) throw new Error('the cluster has no KN to kill');
    log(`kill -9 of KN ${kn.knId} at ${load.acked.length} acknowledged writes`);
    kills.push(await load.kill('kn', kn.pid));
    await load.until(o.writes);
  } finally {
    await load.stop();
  }
  const writeSeconds = (o.clock.nowUs() - startUs) / 1e6;
  log(`reading back ${load.acked.length} acknowledged writes`);
  const lost = await countLost(client, load.acked, lostKeys, o.clock, log);
  return { load, kills, lost, writeSeconds };
}

/** Runs `body` on a cluster started for it, and always stops the cluster afterwards. */
async function withCluster<T>(o: CrashRunOptions, body: (state: State) => Promise<T>): Promise<T> {
  await clusterUp(o);
  try {
    return await body(readState(o.dataDir));
  } finally {
    await clusterDown(o);
  }
}

/** Writers that put distinct keys and remember which writes were acknowledged. */
class WriteLoad {
  readonly acked: number[] = [];
  unacked = 0;
  readonly unackedByCode = new Map<string, number>();
  private next = 0;
  private stopped = false;
  private writers: Array<Promise<void>> = [];
  /** Acknowledgements of writes issued after `since` (for recovery times). */
  private since = Number.POSITIVE_INFINITY;
  private onAckAfterSince: ((nowUs: number) => void) | null = null;
  /** The latest kill: its report's lastFailureMs follows the failures after it. */
  private lastKill: { report: KillReport; killedUs: number } | null = null;

  constructor(
    private readonly client: ClusterClient,
    private readonly clock: Clock,
    private readonly concurrency: number,
  ) {}

  start(): void {
    this.writers = Array.from({ length: this.concurrency }, () => this.writer());
  }

  async until(acked: number): Promise<void> {
    while (this.acked.length < acked) await this.sleepMs(5);
  }

  async kill(process_: 'dpm' | 'kn', pid: number): Promise<KillReport> {
    const atAcked = this.acked.length;
    const killedUs = this.clock.nowUs();
    const recovered = new Promise<number>((resolve, reject) => {
      const timer = this.clock.setTimer(recoveryTimeoutMs * 1000, () =>
        reject(new Error(`no write was acknowledged within ${recoveryTimeoutMs} ms of the kill`)),
      );
      this.onAckAfterSince = (nowUs) => {
        timer.cancel();
        resolve(nowUs);
      };
    });
    const report: KillReport = {
      process: process_,
      pid,
      atAcked,
      recoveryMs: 0,
      lastFailureMs: null,
    };
    this.lastKill = { report, killedUs };
    this.since = killedUs;
    process.kill(pid, 'SIGKILL');
    report.recoveryMs = ((await recovered) - killedUs) / 1000;
    return report;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.writers);
  }

  private async writer(): Promise<void> {
    while (!this.stopped) {
      const n = this.next++;
      const issuedUs = this.clock.nowUs();
      try {
        await this.client.put(keyOf(n), valueOf(n));
        this.acked.push(n);
        if (issuedUs >= this.since && this.onAckAfterSince !== null) {
          this.onAckAfterSince(this.clock.nowUs());
          this.onAckAfterSince = null;
          this.since = Number.POSITIVE_INFINITY;
        }
      } catch (err) {
        this.unacked++;
        const kill = this.lastKill;
        if (kill !== null) kill.report.lastFailureMs = (this.clock.nowUs() - kill.killedUs) / 1000;
        const code = isDinomoError(err) ? err.code : 'other';
        this.unackedByCode.set(code, (this.unackedByCode.get(code) ?? 0) + 1);
        // A failed write means the cluster is failing over or restarting: do not spin.
        await this.sleepMs(10);
      }
    }
  }

  private sleepMs(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.setTimer(ms * 1000, resolve));
  }
}

function keyOf(n: number): string {
  return `crash-run-${n}`;
}

function valueOf(n: number): string {
  return `value-${n}-${'x'.repeat(n % 64)}`;
}

/** Reads every acknowledged key; a read that fails counts as lost only if it fails again. */
async function countLost(
  client: ClusterClient,
  acked: readonly number[],
  samples: string[],
  clock: Clock,
  log: (line: string) => void,
): Promise<number> {
  let lost = 0;
  const batch = 256;
  const deadlineUs = clock.nowUs() + readBackTimeoutMs * 1000;
  for (let i = 0; i < acked.length; i += batch) {
    if (clock.nowUs() > deadlineUs) {
      // A cluster that cannot serve its reads would otherwise keep the run going for many minutes,
      // one request timeout per read; say where it stood instead.
      throw new DinomoError(
        'TIMEOUT',
        `reading back took over ${readBackTimeoutMs} ms: ${i} of ${acked.length} read, ` +
          `${lost} not as written (e.g. ${samples.slice(0, 3).join('; ')})`,
      );
    }
    const ns = acked.slice(i, i + batch);
    const values = await Promise.all(ns.map((n) => readTwice(client, keyOf(n))));
    let wrong = 0;
    values.forEach((v, j) => {
      const n = ns[j] as number;
      if (v === valueOf(n)) return;
      wrong++;
      if (samples.length < 10) samples.push(`${keyOf(n)}: ${v ?? 'absent'}`);
    });
    if (wrong > 0) log(`read-back: ${wrong} of ${ns.length} not as written (e.g. ${samples[0]})`);
    lost += wrong;
  }
  return lost;
}

/** The value read (a second try after an error), `error CODE` when both reads failed. */
async function readTwice(client: ClusterClient, key: string): Promise<string | null> {
  try {
    return (await client.get(key))?.toString() ?? null;
  } catch {
    try {
      return (await client.get(key))?.toString() ?? null;
    } catch (err) {
      return `error ${isDinomoError(err) ? `${err.code}: ${err.message}` : String(err)}`;
    }
  }
}

async function clusterUp(o: CrashRunOptions): Promise<void> {
  await run(process.execPath, [
    o.cli,
    ...['cluster', 'up', '--data-dir', o.dataDir, '--kns', `${o.kns}`],
    ...['--threads', `${o.threadsPerKn}`, '--provider', o.provider],
    ...['--region-bytes', '256MiB', '--block-bytes', '1MiB'],
  ]);
}

async function clusterDown(o: CrashRunOptions): Promise<void> {
  await run(process.execPath, [o.cli, 'cluster', 'down', '--data-dir', o.dataDir]);
}

function readState(dataDir: string): State {
  return JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as State;
}

async function connectTo(state: State): Promise<ClusterClient> {
  const secret =
    state.secretFile === null ? undefined : readFileSync(state.secretFile, 'utf8').trim();
  return connect(state.url, secret === undefined ? {} : { secret });
}
