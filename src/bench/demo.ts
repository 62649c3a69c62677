import { DinomoError } from '../errors/index.js';
import { systemClock, type Clock } from '../time/index.js';
import {
  buildReport,
  formatEvent,
  type BenchConfig,
  type BenchReport,
  type ElasticEvent,
} from './report.js';
import { loadKeys, runWorkload, type LoadResult } from './runner.js';
import type { TimelinePoint } from './timeline.js';
import type {
  BenchCluster,
  BenchClusterClass,
  BenchClusterOptions,
  BenchMode,
  ElasticCluster,
  KnChangeReport,
} from './types.js';
import { Workload, workloadSpec, type WorkloadName } from './workload.js';

/** Everything `dinomo demo` runs with. Cluster options that are null are left to the cluster's defaults. */
export interface DemoOptions {
  kns: number;
  threadsPerKn: number;
  keys: number;
  durationSec: number;
  workload: WorkloadName;
  zipf: number;
  scramble: boolean;
  valueBytes: number;
  concurrency: number;
  cacheBytesPerThread: number | null;
  regionBytes: number | null;
  seed: number;
  /** Add a KN a third into the run and fail one two thirds in (the cluster must be elastic). */
  elastic?: boolean;
  /** The elastic script's second event: fail the first KN (the default) or remove it gracefully. */
  elasticSecond?: 'fail' | 'remove';
  /** The engine; absent: the cluster's default ('dinomo'). */
  mode?: BenchMode;
  /** Length of the report's timeline buckets in ms; default 1000 (one point per second). */
  timelineBucketMs?: number;
}

export const demoDefaults = {
  kns: 1,
  threadsPerKn: 2,
  keys: 100_000,
  durationSec: 10,
  workload: 'read-mostly',
  zipf: 0.99,
  scramble: false,
  valueBytes: 1000,
  concurrency: 64,
} as const satisfies Partial<DemoOptions>;

/** A progress display for one phase at a time (a terminal bar in the CLI). */
export interface DemoProgress {
  start(phase: 'load' | 'run', total: number): void;
  update(value: number, rate: number): void;
  stop(): void;
}

export interface DemoIo {
  /** One line of human-readable log (the CLI sends it to stderr). */
  log(line: string): void;
  progress: DemoProgress | null;
  clock?: Clock;
}

/**
 * The demo: start an embedded cluster, load every key, run the workload for the duration, and return
 * the report. The cluster class is a parameter so that tests can pass a fake. The cluster is always
 * stopped; if both the run and the stop fail, the run's error is the one thrown.
 */
export async function runDemo(
  clusterClass: BenchClusterClass,
  options: DemoOptions,
  io: DemoIo,
): Promise<BenchReport> {
  // Building the workload first validates keys, zipf and value size before any thread starts.
  const workload = new Workload(
    workloadSpec(options.workload, {
      keys: options.keys,
      zipfExponent: options.zipf,
      valueBytes: options.valueBytes,
      seed: options.seed,
      scramble: options.scramble,
    }),
  );
  io.log(
    `starting an embedded cluster: ${options.mode === undefined ? '' : `mode ${options.mode}, `}` +
      `${options.kns} KN x ${options.threadsPerKn} threads (seed ${options.seed})`,
  );
  return withCluster(clusterClass, clusterOptions(options), io, (cluster) =>
    loadAndRun(cluster, workload, options, io),
  );
}

/**
 * Starts a cluster, runs `work` on it, and always stops it; if both the work and the stop fail, the
 * work's error is the one thrown.
 */
export async function withCluster<T>(
  clusterClass: BenchClusterClass,
  options: BenchClusterOptions,
  io: DemoIo,
  work: (cluster: BenchCluster) => Promise<T>,
): Promise<T> {
  const cluster = await clusterClass.start(options);
  let result: T;
  try {
    result = await work(cluster);
  } catch (err) {
    io.progress?.stop();
    await cluster.stop().catch(() => undefined);
    throw err;
  }
  await cluster.stop();
  return result;
}

async function loadAndRun(
  cluster: BenchCluster,
  workload: Workload,
  options: DemoOptions,
  io: DemoIo,
): Promise<BenchReport> {
  const clock = io.clock ?? systemClock;
  const client = cluster.client();
  io.log(`loading ${options.keys} keys of ${options.valueBytes} bytes`);
  io.progress?.start('load', options.keys);
  const loadStartUs = clock.nowUs();
  const load: LoadResult = await loadKeys(client, options.keys, options.valueBytes, {
    concurrency: options.concurrency,
    keyPrefix: workload.spec.keyPrefix,
    clock,
    onProgress: (loaded) =>
      io.progress?.update(loaded, rateOf(loaded, clock.nowUs() - loadStartUs)),
  });
  io.progress?.stop();
  io.log(
    `running ${options.workload} for ${options.durationSec} s with ${options.concurrency} operations in flight`,
  );
  io.progress?.start('run', options.durationSec);
  const runStartUs = clock.nowUs();
  const events: ElasticEvent[] = [];
  const fine: TimelinePoint[] = [];
  const reconfiguring =
    options.elastic === true
      ? reconfigureDuringRun(
          asElastic(cluster),
          options.durationSec,
          options.elasticSecond ?? 'fail',
          clock,
          runStartUs,
          events,
          io,
        )
      : Promise.resolve();
  const run = await runWorkload(cluster, {
    durationMs: options.durationSec * 1000,
    workload,
    concurrency: options.concurrency,
    clock,
    // A finer timeline comes from the runner's report periods rather than its per-second one.
    ...(options.timelineBucketMs === undefined
      ? {}
      : { reportPeriodMs: options.timelineBucketMs, onPeriod: (p: TimelinePoint) => fine.push(p) }),
    onProgress: (p) =>
      io.progress?.update(
        Math.min(options.durationSec, p.elapsedMs / 1000),
        rateOf(p.ops, p.elapsedMs * 1000),
      ),
  });
  // Progress ticks are periodic, so the last one falls short of the end: show the run as complete.
  io.progress?.update(options.durationSec, rateOf(run.ops.total, run.elapsedUs));
  io.progress?.stop();
  await reconfiguring;
  const report = buildReport(run, demoConfig(options, workload), load);
  if (options.timelineBucketMs !== undefined) report.timeline = fine;
  if (options.elastic === true) report.events = events;
  return report;
}

function asElastic(cluster: BenchCluster): ElasticCluster {
  const c = cluster as Partial<ElasticCluster>;
  if (
    typeof c.addKn !== 'function' ||
    typeof c.failKn !== 'function' ||
    typeof c.removeKn !== 'function' ||
    typeof c.knIds !== 'function'
  ) {
    throw new DinomoError(
      'NOT_SUPPORTED',
      'this cluster cannot add, remove or fail KNs (--elastic)',
    );
  }
  return cluster as ElasticCluster;
}

/**
 * The elastic demo's script: a third into the run a KN is added, two thirds in the first KN is
 * failed (killed, detected, failed over) or, with `second` 'remove', removed gracefully. Each event
 * is logged and kept for the report.
 */
async function reconfigureDuringRun(
  cluster: ElasticCluster,
  durationSec: number,
  second: 'fail' | 'remove',
  clock: Clock,
  runStartUs: number,
  events: ElasticEvent[],
  io: DemoIo,
): Promise<void> {
  const at = (fraction: number): Promise<void> =>
    new Promise((resolve) =>
      clock.setTimer(
        Math.max(0, runStartUs + fraction * durationSec * 1e6 - clock.nowUs()),
        resolve,
      ),
    );
  const record = (kind: ElasticEvent['kind'], startUs: number, r: KnChangeReport): void => {
    const event: ElasticEvent = {
      atSec: (startUs - runStartUs) / 1e6,
      kind,
      knId: r.knId,
      slotsMoved: r.slotsMoved,
      durationMs: r.durationMs,
      maxPauseMs: r.maxPauseMs ?? null,
      maxReadPauseMs: r.maxReadPauseMs ?? null,
      detectMs: r.detectMs ?? null,
      failoverMs: r.failoverMs ?? null,
    };
    events.push(event);
    io.log(formatEvent(event));
  };
  await at(1 / 3);
  let startUs = clock.nowUs();
  record('add', startUs, await cluster.addKn());
  await at(2 / 3);
  const victim = Math.min(...cluster.knIds());
  startUs = clock.nowUs();
  record(
    second,
    startUs,
    second === 'fail' ? await cluster.failKn(victim) : await cluster.removeKn(victim),
  );
}

function rateOf(count: number, elapsedUs: number): number {
  return elapsedUs > 0 ? Math.round((count * 1e6) / elapsedUs) : 0;
}

function clusterOptions(options: DemoOptions): BenchClusterOptions {
  const result: BenchClusterOptions = { kns: options.kns, threadsPerKn: options.threadsPerKn };
  if (options.mode !== undefined) result.mode = options.mode;
  if (options.cacheBytesPerThread !== null)
    result.cacheBytesPerThread = options.cacheBytesPerThread;
  if (options.regionBytes !== null) result.regionBytes = options.regionBytes;
  return result;
}

function demoConfig(options: DemoOptions, workload: Workload): BenchConfig {
  return {
    workload: options.workload,
    readFraction: workload.spec.readFraction,
    keys: options.keys,
    zipf: options.zipf,
    scramble: options.scramble,
    valueBytes: options.valueBytes,
    concurrency: options.concurrency,
    durationSec: options.durationSec,
    seed: options.seed,
    kns: options.kns,
    threadsPerKn: options.threadsPerKn,
    cacheBytesPerThread: options.cacheBytesPerThread,
    regionBytes: options.regionBytes,
  };
}
