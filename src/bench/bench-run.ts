import { DinomoError } from '../errors/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { withCluster, type DemoIo } from './demo.js';
import { createLatencyHistogram, summarizeLatency } from './histogram.js';
import {
  buildReport,
  bytes,
  diffStats,
  errorLine,
  int,
  percent,
  ratio,
  round,
  type BenchConfig,
  type BenchReport,
  type HitRatio,
} from './report.js';
import {
  loadKeys,
  runOpenLoop,
  runWorkload,
  type LoadResult,
  type RunOpCounts,
  type RunResult,
} from './runner.js';
import {
  StatsTimeline,
  formatBenchTimeline,
  formatTable,
  type BenchTimelinePoint,
} from './stats-timeline.js';
import type { LineChartSpec } from './svg-chart.js';
import type { BenchCluster, BenchClusterClass, BenchClusterOptions, BenchMode } from './types.js';
import {
  Workload,
  workloadSpec,
  type RequestDistribution,
  type WorkloadName,
  type WorkloadOverrides,
} from './workload.js';
import { clusterModes } from '../config/options.js';

export const benchModes: readonly BenchMode[] = clusterModes;

/**
 * How key numbers map to popularity. `scrambled` spreads the hot keys over the key space (and so
 * over the KN threads that own them); `original` is the original benchmark's order, where the
 * smallest key numbers are the hottest.
 */
export type KeyOrder = 'scrambled' | 'original';

export const keyOrders: readonly KeyOrder[] = ['scrambled', 'original'];

/** Everything `dinomo bench` runs with. Cluster options that are null are left to the cluster. */
export interface BenchRunOptions {
  mode: BenchMode;
  kns: number;
  threadsPerKn: number;
  workload: WorkloadName;
  keys: number;
  valueBytes: number;
  zipf: number;
  /** Null: the workload preset's distribution. */
  distribution: RequestDistribution | null;
  keyOrder: KeyOrder;
  /** Measured seconds per repetition. */
  durationSec: number;
  /** Seconds of unrecorded operations before each repetition's measured phase. */
  warmupSec: number;
  repetitions: number;
  /** Operations in flight in the closed loop, and puts in flight while loading. */
  concurrency: number;
  /** Null: the closed loop. A rate: the open loop, starting this many operations per second. */
  ratePerSec: number | null;
  /** Open loop only: operations in flight at most; one due beyond that is dropped. */
  maxInFlight: number;
  cacheBytesPerThread: number | null;
  regionBytes: number | null;
  seed: number;
}

export const benchDefaults = {
  mode: 'dinomo',
  kns: 1,
  threadsPerKn: 2,
  workload: 'read-mostly',
  keys: 100_000,
  valueBytes: 1000,
  zipf: 0.99,
  distribution: null,
  keyOrder: 'scrambled',
  durationSec: 10,
  warmupSec: 2,
  repetitions: 1,
  concurrency: 64,
  ratePerSec: null,
  maxInFlight: 1024,
  cacheBytesPerThread: null,
  regionBytes: null,
} as const satisfies Omit<BenchRunOptions, 'seed'>;

export type BenchLoop = 'closed' | 'open';

/** What was run, as it appears in the report: the demo's config and the bench's own settings. */
export interface BenchRunConfig extends BenchConfig {
  mode: BenchMode;
  /** The distribution keys were drawn from (the preset's unless overridden). */
  distribution: RequestDistribution;
  keyOrder: KeyOrder;
  warmupSec: number;
  repetitions: number;
  loop: BenchLoop;
  /** Open loop: the target rate; null in the closed loop. */
  ratePerSec: number | null;
  /** Open loop: the in-flight limit; null in the closed loop. */
  maxInFlight: number | null;
}

/** One repetition's measured phase. */
export interface BenchRepetition {
  opsPerSec: number;
  latencyUs: BenchReport['latencyUs'];
  rtsPerOp: number;
  hitRatio: HitRatio;
  missCostRts: number;
  durationSec: number;
  /** Operations that succeeded. */
  ops: number;
  /** Operations that failed, abandoned ones at the drain included. */
  errors: number;
  /** Open loop: operations that fell due with `maxInFlight` in flight and were never issued. */
  dropped: number;
}

/**
 * The result of `dinomo bench`: the demo's report fields over all repetitions, and the bench's own.
 * `opsPerSec` is the median of the repetitions'; the latencies come from their merged histograms;
 * round trips, hit ratios and miss cost from the cluster's counters over the measured phases only
 * (warm-ups excluded); `dpmBytesUsed` and `cacheBytesUsed` are as the last repetition ended.
 */
export interface BenchRunReport extends Omit<BenchReport, 'timeline' | 'config' | 'events'> {
  mode: BenchMode;
  workload: WorkloadName;
  kns: number;
  threadsPerKn: number;
  loop: BenchLoop;
  /** Open loop: operations never issued because `maxInFlight` were in flight; 0 in the closed loop. */
  dropped: number;
  repetitions: BenchRepetition[];
  /** Every second of every repetition, in order. */
  timeline: BenchTimelinePoint[];
  load: NonNullable<BenchReport['load']>;
  config: BenchRunConfig;
}

/** The bench logs and draws progress as the demo does. */
export type BenchIo = DemoIo;

/**
 * `dinomo bench`: start an embedded cluster in `options.mode`, load the keys, run the workload
 * `repetitions` times on the loaded cluster (each a warm-up and a measured phase, closed or open
 * loop), and return the report. The cluster is always stopped; if both the run and the stop fail,
 * the run's error is thrown. A cluster that does not run the mode rejects it at start, and that
 * error (NOT_SUPPORTED or INVALID_OPTION) is thrown as is.
 */
export async function runBench(
  clusterClass: BenchClusterClass,
  options: BenchRunOptions,
  io: BenchIo,
): Promise<BenchRunReport> {
  checkOptions(options);
  // Building the workload first validates keys, zipf and value size before any thread starts.
  const workload = new Workload(workloadSpec(options.workload, workloadOverrides(options)));
  io.log(
    `starting an embedded cluster: mode ${options.mode}, ${options.kns} KN x ` +
      `${options.threadsPerKn} threads (seed ${options.seed})`,
  );
  return withCluster(clusterClass, benchClusterOptions(options), io, (cluster) =>
    loadAndMeasure(cluster, workload, options, io),
  );
}

function checkOptions(options: BenchRunOptions): void {
  const bad = (message: string): never => {
    throw new DinomoError('INVALID_OPTION', message);
  };
  if (!benchModes.includes(options.mode))
    bad(`mode must be one of ${benchModes.join(', ')}, got ${String(options.mode)}`);
  if (!keyOrders.includes(options.keyOrder))
    bad(`keyOrder must be one of ${keyOrders.join(', ')}, got ${String(options.keyOrder)}`);
  if (!Number.isInteger(options.repetitions) || options.repetitions < 1)
    bad(`repetitions must be a positive integer, got ${options.repetitions}`);
  if (!(options.durationSec > 0)) bad(`durationSec must be positive, got ${options.durationSec}`);
  if (!(options.warmupSec >= 0)) bad(`warmupSec must not be negative, got ${options.warmupSec}`);
  if (options.ratePerSec !== null && !(options.ratePerSec > 0))
    bad(`ratePerSec must be positive, got ${options.ratePerSec}`);
}

function workloadOverrides(options: BenchRunOptions): WorkloadOverrides {
  const overrides: WorkloadOverrides = {
    keys: options.keys,
    zipfExponent: options.zipf,
    valueBytes: options.valueBytes,
    seed: options.seed,
    scramble: options.keyOrder === 'scrambled',
  };
  if (options.distribution !== null) overrides.distribution = options.distribution;
  return overrides;
}

/** The options `Cluster.start` gets: the mode and shape always, sizes only when given. */
export function benchClusterOptions(options: BenchRunOptions): BenchClusterOptions {
  const result: BenchClusterOptions = {
    mode: options.mode,
    kns: options.kns,
    threadsPerKn: options.threadsPerKn,
  };
  if (options.cacheBytesPerThread !== null)
    result.cacheBytesPerThread = options.cacheBytesPerThread;
  if (options.regionBytes !== null) result.regionBytes = options.regionBytes;
  return result;
}

async function loadAndMeasure(
  cluster: BenchCluster,
  workload: Workload,
  options: BenchRunOptions,
  io: BenchIo,
): Promise<BenchRunReport> {
  const clock = io.clock ?? systemClock;
  const load = await loadPhase(cluster, workload, options, io, clock);
  const config = runConfig(options, workload);
  const loop: BenchLoop = options.ratePerSec === null ? 'closed' : 'open';
  const { repetitions, durationSec, warmupSec } = options;
  io.log(
    `running ${options.workload} (${workload.spec.distribution}, keys ${options.keyOrder}): ` +
      `${repetitions} x (${warmupSec} s warm-up + ${durationSec} s), ` +
      (loop === 'closed'
        ? `closed loop with ${options.concurrency} in flight`
        : `open loop at ${int(options.ratePerSec ?? 0)} ops/s, at most ${options.maxInFlight} in flight`),
  );
  const total = repetitions * durationSec;
  io.progress?.start('run', total);
  const runs: MeasuredRun[] = [];
  for (let repetition = 1; repetition <= repetitions; repetition++) {
    const doneSec = (repetition - 1) * durationSec;
    const measured = await measureOnce(cluster, workload, options, config, clock, repetition, (p) =>
      io.progress?.update(
        doneSec + Math.min(durationSec, p.elapsedMs / 1000),
        rateOf(p.ops, p.elapsedMs * 1000),
      ),
    );
    runs.push(measured);
    const r = measured.repetition;
    io.progress?.update(doneSec + durationSec, r.opsPerSec);
    // A line per repetition only without a bar, which a log line would tear.
    if (io.progress === null && repetitions > 1) {
      io.log(
        `repetition ${repetition}/${repetitions}: ${int(r.opsPerSec)} ops/s, ` +
          `p99 ${int(r.latencyUs.p99)} µs, ${r.rtsPerOp.toFixed(2)} RTs/op`,
      );
    }
  }
  io.progress?.stop();
  return combine(runs, options, config, load, loop);
}

async function loadPhase(
  cluster: BenchCluster,
  workload: Workload,
  options: BenchRunOptions,
  io: BenchIo,
  clock: Clock,
): Promise<LoadResult> {
  io.log(`loading ${options.keys} keys of ${options.valueBytes} bytes`);
  io.progress?.start('load', options.keys);
  const startUs = clock.nowUs();
  const load = await loadKeys(cluster.client(), options.keys, options.valueBytes, {
    concurrency: options.concurrency,
    keyPrefix: workload.spec.keyPrefix,
    clock,
    onProgress: (loaded) => io.progress?.update(loaded, rateOf(loaded, clock.nowUs() - startUs)),
  });
  io.progress?.stop();
  return load;
}

interface MeasuredRun {
  run: RunResult;
  dropped: number;
  repetition: BenchRepetition;
  timeline: BenchTimelinePoint[];
}

/** One repetition: a warm-up and a measured phase, with the cluster's counters sampled per second. */
async function measureOnce(
  cluster: BenchCluster,
  workload: Workload,
  options: BenchRunOptions,
  config: BenchRunConfig,
  clock: Clock,
  repetition: number,
  onProgress: (p: { elapsedMs: number; ops: number }) => void,
): Promise<MeasuredRun> {
  const sampler = new StatsTimeline(cluster);
  const common = {
    durationMs: options.durationSec * 1000,
    warmupMs: options.warmupSec * 1000,
    workload,
    clock,
    onProgress,
    onPeriod: sampler.onPeriod,
  };
  let run: RunResult;
  let dropped = 0;
  if (options.ratePerSec === null) {
    run = await runWorkload(cluster, { ...common, concurrency: options.concurrency });
  } else {
    const open = await runOpenLoop(cluster, {
      ...common,
      ratePerSec: options.ratePerSec,
      maxInFlight: options.maxInFlight,
    });
    run = open;
    dropped = open.dropped;
  }
  const timeline = await sampler.finish(run.statsBefore, repetition);
  const r = buildReport(run, config);
  const errors = Object.values(r.errors).reduce((sum, n) => sum + n, 0);
  return {
    run,
    dropped,
    timeline,
    repetition: {
      opsPerSec: r.opsPerSec,
      latencyUs: r.latencyUs,
      rtsPerOp: r.rtsPerOp,
      hitRatio: r.hitRatio,
      missCostRts: r.missCostRts,
      durationSec: r.durationSec,
      ops: run.ops.total,
      errors,
      dropped,
    },
  };
}

/** The report over every repetition. */
function combine(
  runs: readonly MeasuredRun[],
  options: BenchRunOptions,
  config: BenchRunConfig,
  load: LoadResult,
  loop: BenchLoop,
): BenchRunReport {
  const histogram = createLatencyHistogram();
  const ops: Required<RunOpCounts> = {
    gets: 0,
    puts: 0,
    inserts: 0,
    deletes: 0,
    total: 0,
    getsNotFound: 0,
  };
  const errors: Record<string, number> = {};
  const sum = { gets: 0, total: 0, rts: 0, value: 0, shortcut: 0, log: 0, miss: 0, missRts: 0 };
  let elapsedUs = 0;
  let dropped = 0;
  for (const { run, dropped: d } of runs) {
    histogram.add(run.histogram);
    for (const key of Object.keys(ops) as (keyof RunOpCounts)[]) ops[key] += run.ops[key] ?? 0;
    for (const [code, count] of Object.entries(run.errors))
      errors[code] = (errors[code] ?? 0) + count;
    if (run.abandoned > 0) errors['DRAIN_TIMEOUT'] = (errors['DRAIN_TIMEOUT'] ?? 0) + run.abandoned;
    const delta = diffStats(run.statsBefore, run.statsAfter);
    sum.gets += delta.gets;
    sum.total += delta.total;
    sum.rts += delta.rts;
    sum.value += delta.hits.value;
    sum.shortcut += delta.hits.shortcut;
    sum.log += delta.hits.log;
    sum.miss += delta.hits.miss;
    sum.missRts += delta.missCostRts * delta.hits.miss;
    elapsedUs += run.elapsedUs;
    dropped += d;
  }
  const last = runs[runs.length - 1]?.run;
  const { p50, p99, p999, max, mean } = summarizeLatency(histogram);
  return {
    mode: options.mode,
    workload: options.workload,
    kns: options.kns,
    threadsPerKn: options.threadsPerKn,
    loop,
    opsPerSec: median(runs.map((r) => r.repetition.opsPerSec)),
    latencyUs: { p50, p99, p999, max, mean },
    rtsPerOp: round(ratio(sum.rts, sum.total), 3),
    hitRatio: {
      value: round(ratio(sum.value, sum.gets), 4),
      shortcut: round(ratio(sum.shortcut, sum.gets), 4),
      log: round(ratio(sum.log, sum.gets), 4),
      miss: round(ratio(sum.miss, sum.gets), 4),
    },
    missCostRts: round(ratio(sum.missRts, sum.miss), 3),
    dpmBytesUsed: last?.statsAfter.dpm.bytesUsed ?? 0,
    cacheBytesUsed: last?.statsAfter.cache.bytesUsed ?? 0,
    ops,
    errors,
    durationSec: round(elapsedUs / 1e6, 3),
    dropped,
    repetitions: runs.map((r) => r.repetition),
    timeline: runs.flatMap((r) => r.timeline),
    load: loadSummary(load),
    config,
  };
}

/** The middle value; the mean of the two middle ones, rounded, for an even count. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? upper : Math.round(((sorted[mid - 1] ?? 0) + upper) / 2);
}

function loadSummary(load: LoadResult): BenchRunReport['load'] {
  const durationSec = load.elapsedUs / 1e6;
  return {
    keys: load.keys,
    durationSec: round(durationSec, 3),
    opsPerSec: rateOf(load.keys, load.elapsedUs),
  };
}

function rateOf(count: number, elapsedUs: number): number {
  return elapsedUs > 0 ? Math.round((count * 1e6) / elapsedUs) : 0;
}

function runConfig(options: BenchRunOptions, workload: Workload): BenchRunConfig {
  const open = options.ratePerSec !== null;
  return {
    mode: options.mode,
    workload: options.workload,
    readFraction: workload.spec.readFraction,
    distribution: workload.spec.distribution,
    keys: options.keys,
    zipf: options.zipf,
    scramble: options.keyOrder === 'scrambled',
    keyOrder: options.keyOrder,
    valueBytes: options.valueBytes,
    concurrency: options.concurrency,
    durationSec: options.durationSec,
    warmupSec: options.warmupSec,
    repetitions: options.repetitions,
    loop: open ? 'open' : 'closed',
    ratePerSec: options.ratePerSec,
    maxInFlight: open ? options.maxInFlight : null,
    seed: options.seed,
    kns: options.kns,
    threadsPerKn: options.threadsPerKn,
    cacheBytesPerThread: options.cacheBytesPerThread,
    regionBytes: options.regionBytes,
  };
}

/** The summary table `dinomo bench` prints at the end, then the per-second timeline. */
export function formatBenchReport(report: BenchRunReport): string {
  const c = report.config;
  const h = report.hitRatio;
  const l = report.latencyUs;
  const loop =
    report.loop === 'closed'
      ? `closed, ${int(c.concurrency)} in flight`
      : `open at ${int(c.ratePerSec ?? 0)} ops/s, at most ${int(c.maxInFlight ?? 0)} in flight, ` +
        `${int(report.dropped)} dropped`;
  const summary = [
    ['mode', report.mode],
    [
      'workload',
      `${report.workload} (${percent(c.readFraction, 0)} get), ${int(c.keys)} keys, ` +
        `${c.distribution}${c.distribution === 'uniform' ? '' : ` ${c.zipf}`}, keys ${c.keyOrder}, ` +
        `${int(c.valueBytes)}-byte values, seed ${c.seed}`,
    ],
    [
      'cluster',
      `${report.kns} KN x ${report.threadsPerKn} threads, cache ` +
        `${c.cacheBytesPerThread === null ? 'default' : bytes(c.cacheBytesPerThread)}/thread, ` +
        `region ${c.regionBytes === null ? 'default' : bytes(c.regionBytes)}`,
    ],
    ['loop', loop],
    [
      'runs',
      `${c.repetitions} x (${c.warmupSec} s warm-up + ${c.durationSec} s measured), ` +
        `${int(report.ops.total)} ops in ${report.durationSec.toFixed(1)} s`,
    ],
    [
      'ops/s',
      report.repetitions.length > 1
        ? `${int(report.opsPerSec)} (median of ${report.repetitions.length}: ` +
          `${report.repetitions.map((r) => int(r.opsPerSec)).join(', ')})`
        : int(report.opsPerSec),
    ],
    [
      'latency µs',
      `p50 ${int(l.p50)}   p99 ${int(l.p99)}   p99.9 ${int(l.p999)}   max ${int(l.max)}   ` +
        `mean ${l.mean.toFixed(1)}`,
    ],
    ['RTs/op', report.rtsPerOp.toFixed(2)],
    [
      'gets served',
      `value ${percent(h.value)}   shortcut ${percent(h.shortcut)}   log ${percent(h.log)}   ` +
        `miss ${percent(h.miss)}` +
        (report.ops.getsNotFound > 0 ? `   (${int(report.ops.getsNotFound)} not found)` : ''),
    ],
    ['miss cost', `${report.missCostRts.toFixed(2)} RTs`],
    ['DPM used', bytes(report.dpmBytesUsed)],
    ['cache used', bytes(report.cacheBytesUsed)],
    ['errors', errorLine(report.errors)],
    [
      'load',
      `${int(report.load.keys)} keys in ${report.load.durationSec.toFixed(1)} s ` +
        `(${int(report.load.opsPerSec)} puts/s)`,
    ],
  ];
  const parts = [formatTable(summary, 2)];
  if (report.repetitions.length > 1) {
    const rows = [['rep', 'ops/s', 'p50 µs', 'p99 µs', 'p99.9 µs', 'RTs/op', 'miss', 'errors']];
    report.repetitions.forEach((r, i) =>
      rows.push([
        String(i + 1),
        int(r.opsPerSec),
        int(r.latencyUs.p50),
        int(r.latencyUs.p99),
        int(r.latencyUs.p999),
        r.rtsPerOp.toFixed(2),
        percent(r.hitRatio.miss),
        int(r.errors),
      ]),
    );
    parts.push(formatTable(rows));
  }
  parts.push(formatBenchTimeline(report.timeline));
  return parts.join('\n\n') + '\n';
}

/** Throughput over time, one line per repetition, for `--timeline-svg`. */
export function benchTimelineChart(report: BenchRunReport): LineChartSpec {
  const count = report.repetitions.length;
  const series = report.repetitions.map((_, i) => {
    const points = report.timeline
      .filter((p) => p.repetition === i + 1)
      .map((p) => ({ x: p.second, y: p.opsPerSec }));
    // Markers hide the line of a long run, but a run of a second or two is nothing without them.
    return {
      label: count > 1 ? `repetition ${i + 1}` : `${report.mode} ops/s`,
      points,
      pointMarkers: points.length <= 30,
    };
  });
  return {
    title:
      `${report.mode}: ${report.workload}, ${report.kns} KN x ${report.threadsPerKn} threads, ` +
      `${report.loop} loop`,
    xLabel: 'seconds into the measured phase',
    yLabel: 'ops/s',
    series,
    note: `median ${int(report.opsPerSec)} ops/s; p99 ${int(report.latencyUs.p99)} µs; seed ${report.config.seed}`,
  };
}
