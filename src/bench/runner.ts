import { isDinomoError } from '../errors/index.js';
import { systemClock, type Clock, type TimerHandle } from '../time/index.js';
import { assert } from '../util/index.js';
import {
  createLatencyHistogram,
  recordLatencyUs,
  summarizeLatency,
  type Histogram,
  type LatencySummary,
} from './histogram.js';
import { TimelineRecorder, type TimelinePoint } from './timeline.js';
import type { BenchClient, BenchStats, BenchTarget } from './types.js';
import { ValueFactory } from './values.js';
import type { OpSource } from './workload.js';
import { defaultKeyPrefix, keyName } from './zipf.js';

export interface LoadOptions {
  /** Puts in flight at once; default 64. */
  concurrency?: number;
  /** Called after every completed put. */
  onProgress?: (loaded: number, total: number) => void;
  keyPrefix?: string;
  clock?: Clock;
  /** Attempts after a retriable error (OVERLOADED, TRYAGAIN, ...) before giving up; default 5. */
  maxRetries?: number;
  /** Wait before the first retry, doubled on each further one; default 1000 µs. */
  retryBackoffUs?: number;
}

export interface LoadResult {
  keys: number;
  elapsedUs: number;
  retries: number;
}

/**
 * Writes keys 0 .. keys-1 (version 0 values) with a bounded number of puts in flight, unlike the
 * original LOAD, which pipelined without limit. A non-retriable error, or a retriable one that
 * outlasts the retries, stops the load: the puts in flight finish, then that error is thrown.
 */
export async function loadKeys(
  client: BenchClient,
  keys: number,
  valueBytes: number,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const concurrency = options.concurrency ?? 64;
  assert(Number.isInteger(keys) && keys >= 0, 'keys is a non-negative integer');
  assert(Number.isInteger(concurrency) && concurrency >= 1, 'concurrency is a positive integer');
  const clock = options.clock ?? systemClock;
  const prefix = options.keyPrefix ?? defaultKeyPrefix;
  const values = new ValueFactory(valueBytes);
  const retry = {
    max: options.maxRetries ?? 5,
    backoffUs: options.retryBackoffUs ?? 1000,
    count: 0,
  };
  const startUs = clock.nowUs();
  let next = 0;
  let loaded = 0;
  let failed = false;
  let failure: unknown = null;
  const worker = async (): Promise<void> => {
    while (!failed && next < keys) {
      const index = next++;
      try {
        await putWithRetry(client, keyName(index, prefix), values.make(index, 0), clock, retry);
      } catch (err) {
        if (!failed) failure = err;
        failed = true;
        return;
      }
      loaded++;
      options.onProgress?.(loaded, keys);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, keys) }, worker));
  if (failed) throw failure;
  return { keys, elapsedUs: clock.nowUs() - startUs, retries: retry.count };
}

async function putWithRetry(
  client: BenchClient,
  key: string,
  value: Uint8Array,
  clock: Clock,
  retry: { max: number; backoffUs: number; count: number },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await client.put(key, value);
      return;
    } catch (err) {
      if (!isDinomoError(err) || !err.retriable || attempt >= retry.max) throw err;
      retry.count++;
      await sleepUs(clock, retry.backoffUs * 2 ** attempt);
    }
  }
}

function sleepUs(clock: Clock, delayUs: number): Promise<void> {
  return new Promise((resolve) => {
    clock.setTimer(delayUs, resolve);
  });
}

export interface RunProgress {
  elapsedMs: number;
  ops: number;
  errors: number;
}

export interface RunOptions {
  durationMs: number;
  /** A `Workload`, or any other source of operations (the trigger's replay of recorded keys). */
  workload: OpSource;
  /** Operations in flight at once (closed loop); default 64. */
  concurrency?: number;
  clock?: Clock;
  /** How long to wait for the operations in flight at the deadline; default 10 s. */
  drainTimeoutMs?: number;
  /** Stop the run early, and throw the last error, once this many operations failed; default 1000. */
  maxErrors?: number;
  /** Period of `onProgress` calls; default 250 ms. */
  progressIntervalMs?: number;
  onProgress?: (progress: RunProgress) => void;
  /** Length of the periods of `onPeriod`; default 1000 ms. */
  reportPeriodMs?: number;
  /**
   * Called as each report period closes, with its throughput, latency and errors: a live timeline with
   * buckets of `reportPeriodMs`. The last period runs to the end of the drain and closes with the run.
   */
  onPeriod?: (point: TimelinePoint) => void;
}

export interface RunOpCounts {
  gets: number;
  puts: number;
  total: number;
  /** Gets that found no value: zero when every key was loaded and nothing deletes. */
  getsNotFound: number;
}

export interface RunResult {
  /** From the first operation to the end of the drain. */
  elapsedUs: number;
  /** Operations that succeeded. */
  ops: RunOpCounts;
  /** Failed operations by error code (`INTERNAL` for errors that are not DinomoErrors). */
  errors: Record<string, number>;
  firstErrorMessage: string | null;
  /** Operations still in flight when the drain timed out; their results are not counted. */
  abandoned: number;
  latencyUs: LatencySummary;
  histogram: Histogram;
  timeline: TimelinePoint[];
  statsBefore: BenchStats;
  statsAfter: BenchStats;
}

/**
 * Runs a closed loop: `concurrency` loops each issue one operation, wait for it, and issue the next,
 * until `durationMs` has passed. Every latency goes into one HDR histogram (µs) and into the per-second
 * timeline; cluster stats are taken before and after so the report can use deltas.
 */
export async function runWorkload(target: BenchTarget, options: RunOptions): Promise<RunResult> {
  const client = target.client();
  const statsBefore = await target.stats();
  const run = new ClosedLoopRun(client, options);
  await run.execute();
  const statsAfter = await target.stats();
  if (run.abort !== null) throw run.abort.error;
  return { ...run.result(), statsBefore, statsAfter };
}

type Counters = Omit<RunResult, 'statsBefore' | 'statsAfter'>;

class ClosedLoopRun {
  /** Set when too many operations failed; holds the error that crossed the limit. */
  abort: { error: unknown } | null = null;
  private readonly clock: Clock;
  private readonly workload: OpSource;
  private readonly durationUs: number;
  private readonly histogram = createLatencyHistogram();
  private readonly ops: RunOpCounts = { gets: 0, puts: 0, total: 0, getsNotFound: 0 };
  private readonly errors: Record<string, number> = {};
  private errorCount = 0;
  private firstErrorMessage: string | null = null;
  private readonly timeline: TimelineRecorder;
  /** The recorder of `onPeriod`, when there is one. */
  private readonly periods: TimelineRecorder | null;
  private readonly startUs: number;
  private readonly deadlineUs: number;
  private endUs = 0;
  private stopping = false;
  private finished = false;
  private inFlight = 0;
  private abandoned = 0;
  private points: TimelinePoint[] = [];

  constructor(
    private readonly client: BenchClient,
    private readonly options: RunOptions,
  ) {
    const concurrency = options.concurrency ?? 64;
    assert(Number.isFinite(options.durationMs) && options.durationMs > 0, 'durationMs is positive');
    assert(Number.isInteger(concurrency) && concurrency >= 1, 'concurrency is a positive integer');
    this.clock = options.clock ?? systemClock;
    this.workload = options.workload;
    this.durationUs = Math.round(options.durationMs * 1000);
    this.startUs = this.clock.nowUs();
    this.deadlineUs = this.startUs + this.durationUs;
    this.timeline = new TimelineRecorder(this.startUs, this.durationUs);
    const periodMs = options.reportPeriodMs ?? 1000;
    assert(Number.isFinite(periodMs) && periodMs > 0, 'reportPeriodMs is positive');
    this.periods =
      options.onPeriod === undefined
        ? null
        : new TimelineRecorder(
            this.startUs,
            this.durationUs,
            Math.round(periodMs * 1000),
            options.onPeriod,
          );
  }

  /** Runs the loops; call it right after construction, which is when the measured phase starts. */
  async execute(): Promise<void> {
    // No timer ends the run: each loop compares the clock with the deadline before issuing, because a
    // real timer may fire a little early by the monotonic clock, which would shorten the run.
    const progressTimer =
      this.options.onProgress === undefined
        ? undefined
        : this.startProgress(this.options.onProgress);
    const periodTimer = this.periods === null ? undefined : this.startPeriods(this.periods);
    const drainUs = (this.options.drainTimeoutMs ?? 10_000) * 1000;
    let drainTimer: TimerHandle | undefined;
    const drained = new Promise<'timeout'>((resolve) => {
      drainTimer = this.clock.setTimer(this.durationUs + drainUs, () => resolve('timeout'));
    });
    const loops = Array.from({ length: this.options.concurrency ?? 64 }, () => this.loop());
    const outcome = await Promise.race([Promise.all(loops).then(() => 'done' as const), drained]);
    drainTimer?.cancel();
    progressTimer?.cancel();
    periodTimer?.cancel();
    this.finished = true;
    this.abandoned = outcome === 'timeout' ? this.inFlight : 0;
    this.endUs = this.clock.nowUs();
    this.points = this.timeline.finish(this.endUs);
    this.periods?.finish(this.endUs);
  }

  result(): Counters {
    return {
      elapsedUs: Math.max(1, this.endUs - this.startUs),
      ops: { ...this.ops },
      errors: { ...this.errors },
      firstErrorMessage: this.firstErrorMessage,
      abandoned: this.abandoned,
      latencyUs: summarizeLatency(this.histogram),
      histogram: this.histogram,
      timeline: this.points,
    };
  }

  private async loop(): Promise<void> {
    while (!this.stopping && this.clock.nowUs() < this.deadlineUs) {
      const op = this.workload.nextOp();
      const isGet = op.kind === 'get';
      const startUs = this.clock.nowUs();
      this.inFlight++;
      try {
        if (isGet) {
          const value = await this.client.get(op.key);
          if (!this.finished && value === null) this.ops.getsNotFound++;
        } else {
          await this.client.put(op.key, this.workload.valueFor(op));
        }
        this.recordSuccess(isGet, startUs);
      } catch (err) {
        this.recordError(err);
      } finally {
        this.inFlight--;
      }
    }
  }

  private recordSuccess(isGet: boolean, startUs: number): void {
    if (this.finished) return;
    const nowUs = this.clock.nowUs();
    recordLatencyUs(this.histogram, nowUs - startUs);
    this.timeline.recordOp(nowUs, nowUs - startUs);
    this.periods?.recordOp(nowUs, nowUs - startUs);
    if (isGet) this.ops.gets++;
    else this.ops.puts++;
    this.ops.total++;
  }

  private recordError(err: unknown): void {
    if (this.finished) return;
    const code = isDinomoError(err) ? err.code : 'INTERNAL';
    this.errors[code] = (this.errors[code] ?? 0) + 1;
    this.errorCount++;
    this.firstErrorMessage ??= err instanceof Error ? err.message : String(err);
    this.timeline.recordError(this.clock.nowUs());
    this.periods?.recordError(this.clock.nowUs());
    if (this.errorCount >= (this.options.maxErrors ?? 1000)) {
      this.stopping = true;
      this.abort ??= { error: err };
    }
  }

  private startProgress(onProgress: (progress: RunProgress) => void): TimerHandle {
    const periodUs = (this.options.progressIntervalMs ?? 250) * 1000;
    let handle: TimerHandle;
    const tick = (): void => {
      const elapsedMs = (this.clock.nowUs() - this.startUs) / 1000;
      onProgress({ elapsedMs, ops: this.ops.total, errors: this.errorCount });
      handle = this.clock.setTimer(periodUs, tick);
    };
    handle = this.clock.setTimer(periodUs, tick);
    return { cancel: () => handle.cancel() };
  }

  /**
   * Closes each report period on time even when nothing completes in it (a stall). The timer aims a
   * little past the boundary, because a real timer may fire early by the monotonic clock; the last
   * period is closed by `finish`, after the drain.
   */
  private startPeriods(periods: TimelineRecorder): TimerHandle {
    const slackUs = 1000;
    let handle: TimerHandle | undefined;
    const schedule = (): void => {
      const nowUs = this.clock.nowUs();
      periods.advance(nowUs);
      const nextUs = periods.nextBucketStartUs(nowUs);
      handle =
        nextUs === null ? undefined : this.clock.setTimer(nextUs - nowUs + slackUs, schedule);
    };
    schedule();
    return { cancel: () => handle?.cancel() };
  }
}
