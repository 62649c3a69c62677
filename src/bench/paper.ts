/**
 * `dinomo bench paper`: the paper's comparisons in one invocation, on the embedded cluster.
 *
 * 1. Modes x workloads at an equal cache budget: one `runBench` per mode and workload with the same
 *    keys, value size, KNs, threads, cache bytes per thread, duration and seed.
 * 2. Scaling: measured throughput at the KN counts this machine can host, per mode, on one workload;
 *    then the cost model's prediction for 1 to 16 KNs per mode and network preset, calibrated on the
 *    smallest measured KN count and checked against every measured point. Every modelled number is
 *    labelled as a model.
 * 3. Elasticity: the elastic demo's script (add a KN a third in, fail or remove the first KN two
 *    thirds in) per mode, with a fine timeline, and the throughput dips after each event
 *    (src/bench/dips.ts).
 *
 * This module runs the experiment and returns the result; the markdown, the charts and the files are
 * src/bench/paper-report.ts and the CLI's business.
 */
import { DinomoError } from '../errors/index.js';
import { valueChargeBytes } from '../kn/dac-layout.js';
import { systemClock, type Clock } from '../time/index.js';
import {
  benchClusterOptions,
  benchDefaults,
  benchModes,
  runBench,
  type BenchRunOptions,
  type BenchRunReport,
} from './bench-run.js';
import {
  checkAgainstMeasured,
  costModelAssumptions,
  maxModelKns,
  networkPresets,
  predictScaling,
  type ClusterShape,
  type MeasuredCosts,
  type ModelCheckRow,
  type ModelPoint,
  type NetworkPreset,
  type WorkloadShape,
} from './cost-model.js';
import { runDemo, type DemoProgress } from './demo.js';
import { detectDips, type EventDips } from './dips.js';
import { int, percent, type ElasticEvent, type HitRatio } from './report.js';
import type { BenchClusterClass, BenchMode } from './types.js';
import { workloadSpec, type WorkloadName } from './workload.js';
import { defaultKeyPrefix } from './zipf.js';
import { clusterModes } from '../config/options.js';

/** The elastic script's second event: fail the first KN, or remove it gracefully. */
export type ElasticSecondEvent = 'fail' | 'remove';

export const elasticSecondEvents: readonly ElasticSecondEvent[] = ['fail', 'remove'];

/** Everything `dinomo bench paper` runs with. */
export interface PaperOptions {
  /** Engines compared (parts 1 and 2). */
  modes: readonly BenchMode[];
  /** Workloads of part 1. */
  workloads: readonly WorkloadName[];
  /** KNs of part 1 (and of the elastic runs at start). */
  kns: number;
  threadsPerKn: number;
  /** Measured seconds per repetition (parts 1 and 2). */
  durationSec: number;
  warmupSec: number;
  repetitions: number;
  keys: number;
  valueBytes: number;
  /** The equal cache budget: DAC bytes per KN thread, the same in every mode. */
  cacheBytesPerThread: number;
  /** DPM region bytes; null leaves it to the cluster. */
  regionBytes: number | null;
  /** Closed-loop operations in flight (and puts in flight while loading). */
  concurrency: number;
  /** KN counts measured for part 2. */
  measuredKns: readonly number[];
  scalingWorkload: WorkloadName;
  /** KN counts the model predicts for. */
  modelKns: readonly number[];
  /** Engines of part 3. */
  elasticModes: readonly BenchMode[];
  elasticDurationSec: number;
  elasticSecond: ElasticSecondEvent;
  /** Bucket of the elastic timeline, in ms. */
  timelineBucketMs: number;
  /** A bucket below this fraction of the baseline is in a dip. */
  dipFraction: number;
  /** Buckets before an event whose median is the baseline. */
  dipBaselineBuckets: number;
  seed: number;
}

const MiB = 1024 * 1024;

export const paperDefaults = {
  modes: [...clusterModes],
  workloads: ['read-only', 'read-mostly', 'write-heavy'],
  kns: 1,
  threadsPerKn: 2,
  durationSec: 3,
  warmupSec: 1,
  repetitions: 3,
  keys: 100_000,
  valueBytes: 1000,
  cacheBytesPerThread: 8 * MiB,
  regionBytes: null,
  concurrency: 64,
  measuredKns: [1, 2],
  scalingWorkload: 'read-mostly',
  modelKns: Array.from({ length: 16 }, (_, i) => i + 1),
  elasticModes: ['dinomo', 'dinomo-n'],
  elasticDurationSec: 12,
  elasticSecond: 'fail',
  timelineBucketMs: 100,
  dipFraction: 0.5,
  dipBaselineBuckets: 10,
} as const satisfies Omit<PaperOptions, 'seed'>;

/** What one measured configuration gave (parts 1 and 2). */
export interface PaperRun {
  mode: BenchMode;
  workload: WorkloadName;
  kns: number;
  threadsPerKn: number;
  readFraction: number;
  /** Median of the repetitions. */
  opsPerSec: number;
  repetitionOpsPerSec: number[];
  rtsPerOp: number;
  hitRatio: HitRatio;
  missCostRts: number;
  latencyUs: { p50: number; p99: number };
  /** Failed operations of the measured phases. */
  errors: number;
}

/** The model of one mode on one network, calibrated on one measured run. */
export interface ScalingModel {
  mode: BenchMode;
  network: string;
  /** The measured KN count the model was calibrated on. */
  calibratedAtKns: number;
  /** The per-operation costs the model got (knCpuUsPerOp is the calibrated one). */
  costs: MeasuredCosts;
  /** Every point is a model ('model' label), never a measurement. */
  points: ModelPoint[];
  /** The model against each measured KN count. */
  check: ModelCheckRow[];
}

export interface ScalingResult {
  workload: WorkloadName;
  /** Measured runs, per mode and KN count. */
  measured: PaperRun[];
  models: ScalingModel[];
  /** Modes without a model, and why (a run with no throughput cannot calibrate it). */
  unmodelled: { mode: BenchMode; reason: string }[];
}

export interface ElasticRun {
  mode: BenchMode;
  /** Over the whole run, events included. */
  opsPerSec: number;
  errors: number;
  bucketMs: number;
  events: ElasticEvent[];
  /** One point per bucket: `second` is the bucket's start. */
  timeline: { second: number; opsPerSec: number }[];
  dips: EventDips[];
}

export interface PaperResult {
  options: PaperOptions;
  equalBudget: PaperRun[];
  scaling: ScalingResult;
  elasticity: ElasticRun[];
  /** The cost model's assumptions, then how this experiment fed it. */
  modelAssumptions: string[];
  elapsedSec: number;
}

export interface PaperIo {
  /** A line per finished run (the CLI sends it to stderr). */
  log(line: string): void;
  /** Handed to each run in turn; null for none. */
  progress: DemoProgress | null;
  clock?: Clock;
}

/**
 * What the model predicts for: the paper's network and this machine's, with the calibrated KN CPU;
 * and a what-if on the paper's network with KNs as fast as a native one, where round trips, not
 * our KN CPU, decide (the regime of the paper's Fig. 2).
 */
export interface PaperModelVariant {
  /** The name the tables and chart files use. */
  name: string;
  preset: NetworkPreset;
  /** Replaces the calibrated KN CPU per op; absent: the calibrated one. */
  knCpuUsPerOp?: number;
}

/** Assumption: a native (C++) KN spends about 1 us of CPU per operation; not a measured number. */
export const nativeKnCpuUsPerOp = 1;

export const paperModelVariants: readonly PaperModelVariant[] = [
  { name: 'fdr', preset: networkPresets.fdr },
  { name: 'this-machine-shm', preset: networkPresets['this-machine-shm'] },
  { name: 'fdr-native-kn', preset: networkPresets.fdr, knCpuUsPerOp: nativeKnCpuUsPerOp },
];

/** The networks the model predicts for (one per variant name). */
export const paperNetworks: readonly NetworkPreset[] = paperModelVariants.map((v) => ({
  ...v.preset,
  name: v.name,
}));

/** How this experiment turns a measured run into the model's inputs, one line each. */
export const paperModelAssumptions: readonly string[] = Object.freeze([
  'Calibration: the model of each mode starts from its measured run at the smallest measured KN count; KN CPU per op is set so that the this-machine-shm model reproduces that run exactly, and the same CPU is used for every network.',
  'RTs per get kind are the design values (value 0, shortcut 1, log 0) with the measured miss cost; the rest of the measured RTs per op is put on the writes (RTs per write).',
  'Bytes per RT are taken as the value size plus 64 bytes; DPM merge CPU is not measured by the bench, so the DPM CPU bound is off (0 us per write).',
  'Clients grow with the cluster: each KN thread keeps the in-flight operations it had in the calibration run.',
  `fdr-native-kn is a what-if: the FDR network with KNs that spend ${nativeKnCpuUsPerOp} us of CPU per operation (the class of the original C++ KN; an assumption, not a measurement). Our KN threads spend about ten times that, so on fdr our own KN CPU binds long before the network does; the what-if shows the regime where round trips per op decide, as in the paper.`,
  'The measured runs share 2 cores between the clients, every KN thread and the DPM: more KNs add threads, not cores, so measured points above 1 KN are not the scaling the model predicts for separate machines.',
]);

/**
 * Runs the whole experiment: part 1, part 2 (reusing part 1's runs where the configuration is the
 * same), part 3. Every run starts its own cluster; the first error stops the experiment and is
 * thrown (a mode the cluster refuses gives NOT_SUPPORTED or INVALID_OPTION).
 */
export async function runPaper(
  clusterClass: BenchClusterClass,
  options: PaperOptions,
  io: PaperIo,
): Promise<PaperResult> {
  checkPaperOptions(options);
  const clock = io.clock ?? systemClock;
  const startUs = clock.nowUs();
  const runIo = {
    log: () => undefined,
    progress: io.progress,
    ...(io.clock === undefined ? {} : { clock: io.clock }),
  };
  const scalingToRun = options.modes.flatMap((mode) =>
    options.measuredKns.filter((kns) => !reusable(options, kns)).map((kns) => ({ mode, kns })),
  );
  const total =
    options.modes.length * options.workloads.length +
    scalingToRun.length +
    options.elasticModes.length;
  let done = 0;
  const tag = (): string => `[${++done}/${total}]`;

  const equalBudget: PaperRun[] = [];
  for (const mode of options.modes) {
    for (const workload of options.workloads) {
      const report = await runBench(
        clusterClass,
        benchOptions(options, mode, workload, options.kns),
        runIo,
      );
      const run = paperRun(report);
      equalBudget.push(run);
      io.log(`${tag()} equal cache budget: ${runLine(run)}`);
    }
  }

  const measured: PaperRun[] = [];
  for (const mode of options.modes) {
    for (const kns of options.measuredKns) {
      const reused = reusable(options, kns)
        ? equalBudget.find((r) => r.mode === mode && r.workload === options.scalingWorkload)
        : undefined;
      if (reused !== undefined) {
        measured.push(reused);
        continue;
      }
      const report = await runBench(
        clusterClass,
        benchOptions(options, mode, options.scalingWorkload, kns),
        runIo,
      );
      const run = paperRun(report);
      measured.push(run);
      io.log(`${tag()} scaling: ${runLine(run)}`);
    }
  }
  const scaling = modelScaling(options, measured);

  const elasticity: ElasticRun[] = [];
  for (const mode of options.elasticModes) {
    const run = await runElastic(clusterClass, options, mode, runIo);
    elasticity.push(run);
    io.log(`${tag()} elasticity: ${elasticLine(run)}`);
  }

  return {
    options,
    equalBudget,
    scaling,
    elasticity,
    modelAssumptions: [...costModelAssumptions, ...paperModelAssumptions],
    elapsedSec: Math.round((clock.nowUs() - startUs) / 1e5) / 10,
  };
}

/**
 * Starts and stops a cluster in each mode the experiment uses, with the most KNs any of its runs
 * starts with, so that a mode or a size the cluster refuses is found before anything long runs.
 * Throws the cluster's error.
 */
export async function checkModesStart(
  clusterClass: BenchClusterClass,
  options: PaperOptions,
): Promise<void> {
  const modes = [...new Set([...options.modes, ...options.elasticModes])];
  for (const mode of modes) {
    const kns = Math.max(options.kns, ...(options.modes.includes(mode) ? options.measuredKns : []));
    const o = benchOptions(options, mode, options.scalingWorkload, kns);
    const cluster = await clusterClass.start(benchClusterOptions(o));
    await cluster.stop();
  }
}

/** Whether part 1's run of the scaling workload is the scaling run at `kns`. */
function reusable(options: PaperOptions, kns: number): boolean {
  return kns === options.kns && options.workloads.includes(options.scalingWorkload);
}

/** The options of one `runBench`: only the mode, the workload and the KN count vary. */
export function benchOptions(
  options: PaperOptions,
  mode: BenchMode,
  workload: WorkloadName,
  kns: number,
): BenchRunOptions {
  return {
    ...benchDefaults,
    mode,
    kns,
    threadsPerKn: options.threadsPerKn,
    workload,
    keys: options.keys,
    valueBytes: options.valueBytes,
    durationSec: options.durationSec,
    warmupSec: options.warmupSec,
    repetitions: options.repetitions,
    concurrency: options.concurrency,
    cacheBytesPerThread: options.cacheBytesPerThread,
    regionBytes: options.regionBytes,
    seed: options.seed,
  };
}

function paperRun(report: BenchRunReport): PaperRun {
  return {
    mode: report.mode,
    workload: report.workload,
    kns: report.kns,
    threadsPerKn: report.threadsPerKn,
    readFraction: report.config.readFraction,
    opsPerSec: report.opsPerSec,
    repetitionOpsPerSec: report.repetitions.map((r) => r.opsPerSec),
    rtsPerOp: report.rtsPerOp,
    hitRatio: report.hitRatio,
    missCostRts: report.missCostRts,
    latencyUs: { p50: report.latencyUs.p50, p99: report.latencyUs.p99 },
    errors: Object.values(report.errors).reduce((sum, n) => sum + n, 0),
  };
}

function runLine(r: PaperRun): string {
  return (
    `${r.mode} ${r.workload} ${r.kns} KN: ${int(r.opsPerSec)} ops/s, ${r.rtsPerOp.toFixed(2)} RTs/op, ` +
    `miss ${percent(r.hitRatio.miss)}, p99 ${int(r.latencyUs.p99)} µs`
  );
}

function elasticLine(r: ElasticRun): string {
  const dips = r.dips.flatMap((e) => e.dips.map((d) => `${e.event.label} ${d.lengthMs} ms`));
  return (
    `${r.mode}: ${int(r.opsPerSec)} ops/s over the run, events ` +
    `${r.events.map((e) => `${eventLabel(e)} at ${e.atSec.toFixed(1)} s`).join(', ')}; ` +
    (dips.length === 0 ? 'no dips' : `dips: ${dips.join(', ')}`)
  );
}

// ---------------------------------------------------------------------------------------------
// Part 2: the model.

/** The cost model per mode and network, calibrated on each mode's smallest measured KN count. */
export function modelScaling(options: PaperOptions, measured: readonly PaperRun[]): ScalingResult {
  const models: ScalingModel[] = [];
  const unmodelled: ScalingResult['unmodelled'] = [];
  const knCounts = [...new Set([...options.modelKns, ...options.measuredKns])].sort(
    (a, b) => a - b,
  );
  for (const mode of options.modes) {
    const runs = measured.filter((r) => r.mode === mode).sort((a, b) => a.kns - b.kns);
    const base = runs[0];
    if (base === undefined || !(base.opsPerSec > 0)) {
      unmodelled.push({ mode, reason: 'no measured run with throughput above 0 to calibrate on' });
      continue;
    }
    const workload = workloadShape(options, base);
    const cluster = clusterShape(options, base);
    const costs = calibrate(uncalibratedCosts(options, base), workload, cluster, base);
    const usable = runs
      .filter((r) => r.opsPerSec > 0)
      .map((r) => ({ kns: r.kns, opsPerSec: r.opsPerSec }));
    for (const variant of paperModelVariants) {
      const used =
        variant.knCpuUsPerOp === undefined
          ? costs
          : { ...costs, knCpuUsPerOp: variant.knCpuUsPerOp };
      const points = predictScaling(used, workload, cluster, variant.preset, knCounts);
      models.push({
        mode,
        network: variant.name,
        calibratedAtKns: base.kns,
        costs: used,
        points,
        check: checkAgainstMeasured(points, usable),
      });
    }
  }
  return { workload: options.scalingWorkload, measured: [...measured], models, unmodelled };
}

function workloadShape(options: PaperOptions, run: PaperRun): WorkloadShape {
  const keyBytes = defaultKeyPrefix.length + String(options.keys - 1).length;
  const values = Math.floor(
    (options.cacheBytesPerThread * options.threadsPerKn) /
      valueChargeBytes(keyBytes, options.valueBytes),
  );
  return {
    keys: options.keys,
    zipfExponent: benchDefaults.zipf,
    readFraction: run.readFraction,
    valueBytes: options.valueBytes,
    cacheEntriesPerKn: { values, shortcuts: 0 },
  };
}

function clusterShape(options: PaperOptions, run: PaperRun): ClusterShape {
  return {
    threadsPerKn: options.threadsPerKn,
    dpmCores: 1,
    clientConcurrencyPerThread: options.concurrency / (run.kns * run.threadsPerKn),
  };
}

/** The model's inputs from a run, KN CPU still to be calibrated (paperModelAssumptions). */
function uncalibratedCosts(options: PaperOptions, run: PaperRun): MeasuredCosts {
  const h = run.hitRatio;
  const missRts = run.missCostRts > 0 ? run.missCostRts : 2;
  const rtsByHit: HitRatio = { value: 0, shortcut: 1, log: 0, miss: missRts };
  const readRts = h.value * 0 + h.shortcut * 1 + h.log * 0 + h.miss * missRts;
  const r = run.readFraction;
  const rtsPerWrite = r < 1 ? Math.max(0, (run.rtsPerOp - r * readRts) / (1 - r)) : 2;
  return {
    mode: run.mode,
    kns: run.kns,
    threadsPerKn: run.threadsPerKn,
    opsPerSec: run.opsPerSec,
    readFraction: r,
    hitRatio: h,
    rtsPerOp: run.rtsPerOp,
    rtsByHit,
    rtsPerWrite,
    bytesPerRt: options.valueBytes + 64,
    knCpuUsPerOp: 1,
    dpmCpuUsPerWrite: 0,
  };
}

/**
 * The KN CPU per op at which the this-machine model gives the measured throughput at the measured
 * KN count. The model's CPU bounds are inversely proportional to CPU per op, so scaling the CPU by
 * predicted / measured lands on it in one step when a CPU bound binds, and converges when the
 * latency bound does. A throughput the model cannot reach (a DPM bound caps it below) ends at the
 * smallest CPU tried.
 */
function calibrate(
  costs: MeasuredCosts,
  workload: WorkloadShape,
  cluster: ClusterShape,
  run: PaperRun,
): MeasuredCosts {
  const network = networkPresets['this-machine-shm'];
  const at = (cpuUs: number): number =>
    predictScaling({ ...costs, knCpuUsPerOp: cpuUs }, workload, cluster, network, [run.kns])[0]
      ?.opsPerSec ?? 0;
  const minCpuUs = 1e-3;
  let cpuUs = (run.kns * run.threadsPerKn * 1e6) / run.opsPerSec;
  for (let i = 0; i < 50; i++) {
    const predicted = at(cpuUs);
    if (Math.abs(predicted / run.opsPerSec - 1) < 1e-6) break;
    cpuUs = Math.max(minCpuUs, (cpuUs * predicted) / run.opsPerSec);
    if (cpuUs === minCpuUs) break;
  }
  return { ...costs, knCpuUsPerOp: Math.round(cpuUs * 1000) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Part 3: elasticity.

async function runElastic(
  clusterClass: BenchClusterClass,
  options: PaperOptions,
  mode: BenchMode,
  io: { log(line: string): void; progress: DemoProgress | null; clock?: Clock },
): Promise<ElasticRun> {
  const report = await runDemo(
    clusterClass,
    {
      mode,
      kns: options.kns,
      threadsPerKn: options.threadsPerKn,
      keys: options.keys,
      durationSec: options.elasticDurationSec,
      workload: options.scalingWorkload,
      zipf: benchDefaults.zipf,
      scramble: true,
      valueBytes: options.valueBytes,
      concurrency: options.concurrency,
      cacheBytesPerThread: options.cacheBytesPerThread,
      regionBytes: options.regionBytes,
      seed: options.seed,
      elastic: true,
      elasticSecond: options.elasticSecond,
      timelineBucketMs: options.timelineBucketMs,
    },
    io,
  );
  const events = report.events ?? [];
  const timeline = report.timeline.map((p) => ({ second: p.second, opsPerSec: p.opsPerSec }));
  const dips = detectDips(
    timeline,
    events.map((e) => ({ atSec: e.atSec, label: eventLabel(e) })),
    {
      bucketMs: options.timelineBucketMs,
      fraction: options.dipFraction,
      baselineBuckets: options.dipBaselineBuckets,
    },
  );
  return {
    mode,
    opsPerSec: report.opsPerSec,
    errors: Object.values(report.errors).reduce((sum, n) => sum + n, 0),
    bucketMs: options.timelineBucketMs,
    events,
    timeline,
    dips,
  };
}

/** "add KN 2", "fail KN 1". */
export function eventLabel(e: Pick<ElasticEvent, 'kind' | 'knId'>): string {
  return `${e.kind} KN ${e.knId}`;
}

// ---------------------------------------------------------------------------------------------
// Checks.

/** Throws INVALID_OPTION naming the option, before anything starts. */
export function checkPaperOptions(options: PaperOptions): void {
  const bad = (message: string): never => {
    throw new DinomoError('INVALID_OPTION', message);
  };
  const checkModes = (name: string, modes: readonly BenchMode[]): void => {
    if (modes.length === 0) bad(`${name} must name at least one mode`);
    for (const mode of modes)
      if (!benchModes.includes(mode))
        bad(`${name}: ${String(mode)} is not one of ${benchModes.join(', ')}`);
    if (new Set(modes).size !== modes.length) bad(`${name} names a mode twice`);
  };
  checkModes('modes', options.modes);
  checkModes('elasticModes', options.elasticModes);
  if (options.workloads.length === 0) bad('workloads must name at least one workload');
  if (new Set(options.workloads).size !== options.workloads.length)
    bad('workloads names a workload twice');
  // The workload names themselves are checked by workloadSpec.
  for (const w of [...options.workloads, options.scalingWorkload]) workloadSpec(w);
  const kns = (name: string, list: readonly number[]): void => {
    if (list.length === 0) bad(`${name} must list at least one KN count`);
    for (const n of list)
      if (!Number.isInteger(n) || n < 1 || n > maxModelKns)
        bad(`${name}: KN counts are integers from 1 to ${maxModelKns}, got ${n}`);
    if (new Set(list).size !== list.length) bad(`${name} lists a KN count twice`);
  };
  kns('measuredKns', options.measuredKns);
  kns('modelKns', options.modelKns);
  if (!elasticSecondEvents.includes(options.elasticSecond))
    bad(`elasticSecond must be fail or remove, got ${String(options.elasticSecond)}`);
  if (!(options.elasticDurationSec > 0)) bad('elasticDurationSec must be positive');
  if (!(options.timelineBucketMs > 0)) bad('timelineBucketMs must be positive');
  if (!(options.dipFraction > 0 && options.dipFraction <= 1)) bad('dipFraction must be in (0, 1]');
  if (!Number.isInteger(options.dipBaselineBuckets) || options.dipBaselineBuckets < 1)
    bad('dipBaselineBuckets must be a positive integer');
}
