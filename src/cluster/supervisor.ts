import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../time/index.js';
import { startProcess, stopProcess, type ManagedProcess } from './child-process.js';

export interface SupervisorOptions {
  /** Absolute: the DPM's region goes to `dpm/`, logs to `logs/`, the state to `cluster.json`. */
  dataDir: string;
  kns: number;
  threadsPerKn: number;
  maxKns: number;
  regionBytes: number;
  blockBytes: number;
  cacheBytes: number | null;
  provider: 'shm' | 'tcp';
  durability: 'async' | 'sync';
  /** The cluster secret's file; null: every process reads DINOMO_SECRET. */
  secretFile: string | null;
  /** The CLI script the processes run (dist/cli/main.js). */
  cli: string;
  clock: Clock;
  /** Told about restarts and failures (a line on stderr in the CLI). */
  log: (line: string) => void;
}

/** What `dinomo cluster up` reads from `cluster.json`, and `cluster down` acts on. */
export interface ClusterState {
  supervisorPid: number;
  url: string;
  secretFile: string | null;
  dpm: { pid: number; port: number; restarts: number };
  monitor: { pid: number; port: number };
  kns: Array<{ pid: number; knId: number; ranks: number[] }>;
  knReplacements: number;
}

export const clusterStateFile = 'cluster.json';
const startTimeoutMs = 60_000;
const stopGraceMs = 20_000;
/** A KN that keeps dying is not replaced for ever: each replacement consumes fresh ranks. */
const maxKnReplacements = 64;
const restartPauseMs = 200;

/**
 * The parent of a local multi-process cluster (`dinomo cluster up` starts it in the background):
 * it starts the DPM server, the monitor and the KN processes, writes `cluster.json`, and keeps the
 * cluster whole. A DPM that dies is started again on the same port and data directory (KN threads
 * reconnect; acknowledged writes survive in its region file). A KN that dies has already been
 * failed over by the monitor; a new KN process replaces it and is given slots like an added KN.
 * The monitor holds the membership in memory and cannot be restarted yet: when it dies, the
 * supervisor stops the cluster. SIGTERM stops the KNs, then the monitor, then the DPM.
 */
export class Supervisor {
  private readonly o: SupervisorOptions;
  private dpm: ManagedProcess | null = null;
  private monitor: ManagedProcess | null = null;
  private readonly kns = new Set<ManagedProcess>();
  private dpmRestarts = 0;
  private knReplacements = 0;
  /** KN processes started so far; names their logs (kn-1.log, ...). */
  private knStarts = 0;
  private stopping = false;
  private finished: (code: number) => void = () => {};
  /** Resolves with the exit code once the supervisor stopped everything. */
  readonly done: Promise<number>;

  constructor(options: SupervisorOptions) {
    this.o = options;
    this.done = new Promise((resolve) => (this.finished = resolve));
  }

  async start(): Promise<ClusterState> {
    mkdirSync(join(this.o.dataDir, 'logs'), { recursive: true });
    try {
      this.dpm = await this.startDpm(0);
      const dpmPort = this.dpm.ready.port as number;
      this.monitor = await this.run('monitor', [
        'monitor',
        ...['--dpm', `127.0.0.1:${dpmPort}`, '--kns', `${this.o.kns}`],
        ...['--threads', `${this.o.threadsPerKn}`, '--max-kns', `${this.o.maxKns}`],
        ...(this.o.cacheBytes === null ? [] : ['--cache-bytes', `${this.o.cacheBytes}`]),
        ...this.secretArgs(),
      ]);
      await Promise.all(Array.from({ length: this.o.kns }, () => this.startKn()));
    } catch (err) {
      await this.stop(1);
      throw err;
    }
    void this.monitor.exited.then((code) => {
      if (this.stopping) return;
      this.o.log(`the monitor exited (${code}); it cannot be restarted yet: stopping the cluster`);
      void this.stop(1);
    });
    this.watchDpm(this.dpm);
    return this.writeState();
  }

  /** Stops the KNs, then the monitor, then the DPM, and removes cluster.json. */
  async stop(code = 0): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const { clock } = this.o;
    await Promise.all([...this.kns].map((kn) => stopProcess(kn, clock, stopGraceMs)));
    if (this.monitor !== null) await stopProcess(this.monitor, clock, stopGraceMs);
    if (this.dpm !== null) await stopProcess(this.dpm, clock, stopGraceMs);
    rmSync(join(this.o.dataDir, clusterStateFile), { force: true });
    this.finished(code);
  }

  private startDpm(port: number): Promise<ManagedProcess> {
    const o = this.o;
    return this.run('dpm', [
      'dpm',
      ...['--data-dir', join(o.dataDir, 'dpm'), '--port', `${port}`],
      ...['--region-bytes', `${o.regionBytes}`, '--block-bytes', `${o.blockBytes}`],
      ...['--ranks', `${o.maxKns * o.threadsPerKn}`, '--provider', o.provider],
      ...['--durability', o.durability],
      ...this.secretArgs(),
    ]);
  }

  private async startKn(): Promise<void> {
    const port = this.monitor?.ready.port as number;
    const kn = await this.run(`kn-${++this.knStarts}`, [
      'kn',
      ...['--monitor', `127.0.0.1:${port}`, '--threads', `${this.o.threadsPerKn}`],
      ...this.secretArgs(),
    ]);
    this.kns.add(kn);
    void kn.exited.then((code) => {
      this.kns.delete(kn);
      if (this.stopping) return;
      if (code === 0) {
        // It left the cluster (the monitor moved its slots away and stopped it).
        this.o.log(`KN ${String(kn.ready.knId)} left the cluster`);
        this.writeState();
        return;
      }
      this.o.log(`KN ${String(kn.ready.knId)} exited (${code}); the monitor fails it over`);
      this.writeState();
      void this.replaceKn();
    });
  }

  /** Starts a KN in place of one that died; it joins with fresh ranks and is given slots. */
  private async replaceKn(): Promise<void> {
    if (this.knReplacements >= maxKnReplacements) {
      this.o.log(`not replacing the KN: ${maxKnReplacements} replacements already`);
      return;
    }
    this.knReplacements++;
    try {
      await this.startKn();
      this.writeState();
    } catch (err) {
      this.o.log(`a replacement KN did not start: ${String(err)}`);
    }
  }

  /** Restarts the DPM on its port whenever it dies, until the cluster stops. */
  private watchDpm(dpm: ManagedProcess): void {
    void dpm.exited.then(async (code) => {
      if (this.stopping) return;
      this.o.log(`the DPM exited (${code}); restarting it`);
      const port = dpm.ready.port as number;
      for (;;) {
        try {
          this.dpm = await this.startDpm(port);
          break;
        } catch (err) {
          if (this.stopping) return;
          this.o.log(`the DPM did not restart (${String(err)}); trying again`);
          await new Promise<void>((resolve) =>
            this.o.clock.setTimer(restartPauseMs * 1000, resolve),
          );
        }
      }
      this.dpmRestarts++;
      this.writeState();
      this.watchDpm(this.dpm);
    });
  }

  private run(name: string, args: string[]): Promise<ManagedProcess> {
    const log = join(this.o.dataDir, 'logs', `${name}.log`);
    return startProcess(name, this.o.cli, args, log, this.o.clock, startTimeoutMs);
  }

  private secretArgs(): string[] {
    return this.o.secretFile === null ? [] : ['--secret-file', this.o.secretFile];
  }

  /** Writes cluster.json atomically (a reader never sees half of it). */
  private writeState(): ClusterState {
    const monitorPort = this.monitor?.ready.port as number;
    const state: ClusterState = {
      supervisorPid: process.pid,
      url: `dinomo://127.0.0.1:${monitorPort}`,
      secretFile: this.o.secretFile,
      dpm: {
        pid: this.dpm?.child.pid ?? 0,
        port: this.dpm?.ready.port as number,
        restarts: this.dpmRestarts,
      },
      monitor: { pid: this.monitor?.child.pid ?? 0, port: monitorPort },
      kns: [...this.kns].map((kn) => ({
        pid: kn.child.pid ?? 0,
        knId: kn.ready.knId as number,
        ranks: kn.ready.ranks as number[],
      })),
      knReplacements: this.knReplacements,
    };
    const path = join(this.o.dataDir, clusterStateFile);
    // Once stopping, the file is gone for good: `cluster down` waits for that.
    if (this.stopping) return state;
    writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
    renameSync(`${path}.tmp`, path);
    return state;
  }
}
