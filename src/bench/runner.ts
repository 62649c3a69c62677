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
import type { BenchOp, OpKind, OpSource } from './workload.js';
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
  /** Length of the measured phase, after the warm-up. */
  durationMs: number;
  /** A `Workload`, or any other source of operations (the trigger's replay of recorded keys). */
  workload: OpSource;
  /** Operations in flight at once (closed loop); default 64. */
  concurrency?: number;
  clock?: Clock;
  /**
   * Operations run for this long before the measured phase and are not recorded: not in the
   * histogram, the timeline or the counts. The stats snapshot `statsBefore` is taken as it ends;
   * default 0, which takes the snapshot before the first operation.
   */
  warmupMs?: number;
  /** How long to wait for the operations in flight at the deadline; default 10 s. */
  drainTimeoutMs?: number;
  /**
   * Stop the run early, and throw the last error, once this many operations failed; default 1000.
   * Failures in the warm-up count too, so a target that fails everything stops the run either way.
   */
  maxErrors?: number;
  /** Period of `onProgress` calls in the measured phase; default 250 ms. */
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

export interface OpenLoopOptions extends Omit<RunOptions, 'concurrency'> {
  /** Operations started per second, on a fixed schedule whatever the target does. */
  ratePerSec: number;
  /**
   * Operations in flight at most; one that falls due while this many are in flight is dropped.
   * Default 1024.
   */
  maxInFlight?: number;
}

export interface RunOpCounts {
  gets: number;
  /** Puts of existing keys (updates). */
  puts: number;
  /**
   * Puts of new keys. Optional only so that results built before it existed still fit the type; both
   * runners always set it, and `deletes` too.
   */
  inserts?: number;
  deletes?: number;
  total: number;
  /**
   * Gets that found no value: zero when every key was loaded and nothing deletes. A read of a deleted
   * key, or of a new key whose insert is still in flight, counts here.
   */
  getsNotFound: number;
}

export interface RunResult {
  /** From the start of the measured phase to the end of the drain. */
  elapsedUs: number;
  /** Operations of the measured phase that succeeded. */
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

export interface OpenLoopResult extends RunResult {
  /** Operations of the measured phase that fell due with `maxInFlight` in flight: never issued. */
  dropped: number;
  targetRatePerSec: number;
}

/**
 * Runs a closed loop: `concurrency` loops each issue one operation, wait for it, and issue the next,
 * until the warm-up and `durationMs` have passed. Every latency of the measured phase goes into one HDR
 * histogram (µs) and into the per-second timeline; cluster stats are taken before and after it so the
 * report can use deltas.
 */
export async function runWorkload(target: BenchTarget, options: RunOptions): Promise<RunResult> {
  const { run, statsBefore, statsAfter } = await measure(
    target,
    options,
    (client) => new ClosedLoopRun(client, options),
  );
  return { ...run.result(), statsBefore, statsAfter };
}

/**
 * Runs an open loop: operations start at `ratePerSec` on a fixed schedule, whether or not earlier ones
 * have finished, and each latency runs from the operation's scheduled start, not from when it was
 * actually issued. A closed loop slows down with a slow target and so hides the waits its requests
 * would have had (coordinated omission); this one does not. At most `maxInFlight` operations are in
 * flight: one due beyond that is counted as dropped instead of queued, so a stalled target cannot grow
 * the queue without bound.
 */
export async function runOpenLoop(
  target: BenchTarget,
  options: OpenLoopOptions,
): Promise<OpenLoopResult> {
  const { run, statsBefore, statsAfter } = await measure(
    target,
    options,
    (client) => new OpenLoopRun(client, options),
  );
  return {
    ...run.result(),
    statsBefore,
    statsAfter,
    dropped: run.dropped,
    targetRatePerSec: options.ratePerSec,
  };
}

/**
 * Runs `run` between two stats snapshots and throws the error that stopped it, if one did. Without a
 * warm-up the first snapshot is taken before the first operation; with one, as the measured phase
 * begins, while the warm-up's last operations are still in flight.
 */
async function measure<R extends LoopRun>(
  target: BenchTarget,
  options: Pick<RunOptions, 'warmupMs'>,
  create: (client: BenchClient) => R,
): Promise<{ run: R; statsBefore: BenchStats; statsAfter: BenchStats }> {
  const client = target.client();
  let before: Promise<BenchStats> | null =
    (options.warmupMs ?? 0) > 0 ? null : Promise.resolve(await target.stats());
  const run = create(client);
  await run.execute(() => {
    before ??= snapshot(target);
  });
  const statsBefore = await (before ?? snapshot(target));
  const statsAfter = await target.stats();
  if (run.abort !== null) throw run.abort.error;
  return { run, statsBefore, statsAfter };
}

/** The target's stats as a promise already handled, since it is awaited only after the run. */
function snapshot(target: BenchTarget): Promise<BenchStats> {
  const stats = Promise.resolve(target.stats());
  stats.catch(() => undefined);
  return stats;
}

type Counters = Omit<RunResult, 'statsBefore' | 'statsAfter'>;

/**
 * What both loops share: the schedule (warm-up, measured phase, drain), issuing one operation, and
 * recording what the measured phase did. A subclass decides when operations start.
 */
abstract class LoopRun {
  /** Set when too many operations failed; holds the error that crossed the limit. */
  abort: { error: unknown } | null = null;
  protected readonly clock: Clock;
  protected readonly runStartUs: number;
  /** Operations that start before this belong to the warm-up: they run but are not recorded. */
  protected readonly measuredStartUs: number;
  protected readonly deadlineUs: number;
  protected stopping = false;
  protected inFlight = 0;
  private readonly workload: OpSource;
  private readonly durationUs: number;
  private readonly histogram = createLatencyHistogram();
  private readonly ops: Required<RunOpCounts> = {
    gets: 0,
    puts: 0,
    inserts: 0,
    deletes: 0,
    total: 0,
    getsNotFound: 0,
  };
  private readonly errors: Record<string, number> = {};
  private errorCount = 0;
  /** Failures of the warm-up and the measured phase, for the `maxErrors` limit. */
  private failureCount = 0;
  private firstErrorMessage: string | null = null;
  private readonly timeline: TimelineRecorder;
  /** The recorder of `onPeriod`, when there is one. */
  private readonly periods: TimelineRecorder | null;
  private endUs = 0;
  private finished = false;
  private abandoned = 0;
  private points: TimelinePoint[] = [];

  constructor(
    private readonly client: BenchClient,
    private readonly options: Omit<RunOptions, 'concurrency'>,
  ) {
    const warmupMs = options.warmupMs ?? 0;
    assert(Number.isFinite(options.durationMs) && options.durationMs > 0, 'durationMs is positive');
    assert(Number.isFinite(warmupMs) && warmupMs >= 0, 'warmupMs is not negative');
    this.clock = options.clock ?? systemClock;
    this.workload = options.workload;
    this.durationUs = Math.round(options.durationMs * 1000);
    this.runStartUs = this.clock.nowUs();
    this.measuredStartUs = this.runStartUs + Math.round(warmupMs * 1000);
    this.deadlineUs = this.measuredStartUs + this.durationUs;
    this.timeline = new TimelineRecorder(this.measuredStartUs, this.durationUs);
    const periodMs = options.reportPeriodMs ?? 1000;
    assert(Number.isFinite(periodMs) && periodMs > 0, 'reportPeriodMs is positive');
    this.periods =
      options.onPeriod === undefined
        ? null
        : new TimelineRecorder(
            this.measuredStartUs,
            this.durationUs,
            Math.round(periodMs * 1000),
            options.onPeriod,
          );
  }

  /**
   * Runs the operations; call it right after construction, which is when the run (its warm-up, if it
   * has one) starts. `onMeasuredStart` is called as the measured phase begins.
   */
  async execute(onMeasuredStart: () => void): Promise<void> {
    // No timer ends the run: operations are issued only while the clock (or, in the open loop, their
    // schedule) is before the deadline, because a real timer may fire a little early by the monotonic
    // clock, which would shorten the run.
    const timers: (TimerHandle | undefined)[] = [];
    const beginMeasured = (): void => {
      onMeasuredStart();
      const { onProgress } = this.options;
      if (onProgress !== undefined) timers.push(this.startProgress(onProgress));
      if (this.periods !== null) timers.push(this.startPeriods(this.periods));
    };
    const warmupUs = this.measuredStartUs - this.runStartUs;
    if (warmupUs === 0) beginMeasured();
    else timers.push(this.clock.setTimer(warmupUs, beginMeasured));
    const drainUs = (this.options.drainTimeoutMs ?? 10_000) * 1000;
    const drained = new Promise<'timeout'>((resolve) => {
      timers.push(
        this.clock.setTimer(this.deadlineUs - this.runStartUs + drainUs, () => resolve('timeout')),
      );
    });
    const outcome = await Promise.race([this.issueAll().then(() => 'done' as const), drained]);
    for (const timer of timers) timer?.cancel();
    this.stopIssuing();
    this.finish(outcome === 'timeout');
  }

  result(): Counters {
    return {
      elapsedUs: Math.max(1, this.endUs - this.measuredStartUs),
      ops: { ...this.ops },
      errors: { ...this.errors },
      firstErrorMessage: this.firstErrorMessage,
      abandoned: this.abandoned,
      latencyUs: summarizeLatency(this.histogram),
      histogram: this.histogram,
      timeline: this.points,
    };
  }

  /** Issues operations until the deadline; resolves once every one issued has finished. */
  protected abstract issueAll(): Promise<void>;

  /** Cancels whatever the subclass has scheduled; the run is over. */
  protected stopIssuing(): void {}

  /** Called after each operation finishes, successful or not, once it is no longer in flight. */
  protected afterOp(): void {}

  /**
   * Draws one operation, issues it and records it if it started in the measured phase. Its latency
   * runs from `scheduledUs` when given (the open loop's schedule), else from just before it is sent.
   * It never throws: a failure is recorded as an error.
   */
  protected async perform(scheduledUs?: number): Promise<void> {
    const op = this.workload.nextOp();
    // The op object is reused by the next draw, so keep what is needed after the await.
    const kind = op.kind;
    const startUs = scheduledUs ?? this.clock.nowUs();
    const measured = startUs >= this.measuredStartUs;
    this.inFlight++;
    try {
      const answer = await this.send(op);
      if (measured) this.recordSuccess(kind, startUs, answer === null);
    } catch (err) {
      this.recordError(err, measured);
    } finally {
      this.inFlight--;
      this.afterOp();
    }
  }

  /** Sends `op`; only a get's answer is looked at (null is not found). */
  private send(op: Readonly<BenchOp>): Promise<Uint8Array | null | boolean | void> {
    switch (op.kind) {
      case 'get':
        return this.client.get(op.key);
      case 'put':
      case 'insert':
        return this.client.put(op.key, this.workload.valueFor(op));
      case 'delete':
        return this.client.delete(op.key);
    }
  }

  private finish(timedOut: boolean): void {
    this.finished = true;
    this.abandoned = timedOut ? this.inFlight : 0;
    this.endUs = this.clock.nowUs();
    this.points = this.timeline.finish(this.endUs);
    this.periods?.finish(this.endUs);
  }

  private recordSuccess(kind: OpKind, startUs: number, notFound: boolean): void {
    if (this.finished) return;
    const nowUs = this.clock.nowUs();
    recordLatencyUs(this.histogram, nowUs - startUs);
    this.timeline.recordOp(nowUs, nowUs - startUs);
    this.periods?.recordOp(nowUs, nowUs - startUs);
    this.count(kind, notFound);
  }

  private count(kind: OpKind, notFound: boolean): void {
    const ops = this.ops;
    ops.total++;
    switch (kind) {
      case 'get':
        ops.gets++;
        if (notFound) ops.getsNotFound++;
        return;
      case 'put':
        ops.puts++;
        return;
      case 'insert':
        ops.inserts++;
        return;
      case 'delete':
        ops.deletes++;
    }
  }

  private recordError(err: unknown, measured: boolean): void {
    if (this.finished) return;
    if (measured) {
      const code = isDinomoError(err) ? err.code : 'INTERNAL';
      this.errors[code] = (this.errors[code] ?? 0) + 1;
      this.errorCount++;
      this.firstErrorMessage ??= err instanceof Error ? err.message : String(err);
      this.timeline.recordError(this.clock.nowUs());
      this.periods?.recordError(this.clock.nowUs());
    }
    if (++this.failureCount >= (this.options.maxErrors ?? 1000)) {
      this.stopping = true;
      this.abort ??= { error: err };
    }
  }

  private startProgress(onProgress: (progress: RunProgress) => void): TimerHandle {
    const periodUs = (this.options.progressIntervalMs ?? 250) * 1000;
    let handle: TimerHandle;
    const tick = (): void => {
      const elapsedMs = (this.clock.nowUs() - this.measuredStartUs) / 1000;
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

/** `concurrency` loops, each issuing its next operation as soon as the previous one finished. */
class ClosedLoopRun extends LoopRun {
  private readonly concurrency: number;

  constructor(client: BenchClient, options: RunOptions) {
    super(client, options);
    this.concurrency = options.concurrency ?? 64;
    assert(
      Number.isInteger(this.concurrency) && this.concurrency >= 1,
      'concurrency is a positive integer',
    );
  }

  protected async issueAll(): Promise<void> {
    await Promise.all(Array.from({ length: this.concurrency }, () => this.loop()));
  }

  private async loop(): Promise<void> {
    while (!this.stopping && this.clock.nowUs() < this.deadlineUs) await this.perform();
  }
}

/**
 * Operation i is due at the run's start + i / ratePerSec. A timer wakes the loop at the next due time,
 * and it issues every operation due by then: a timer that fires late issues the missed ones at once,
 * and their latency includes the lateness, as a client at that rate would have seen it.
 */
class OpenLoopRun extends LoopRun {
  /** Operations of the measured phase that were due with `maxInFlight` in flight. */
  dropped = 0;
  private readonly intervalUs: number;
  private readonly maxInFlight: number;
  /** Operations whose due time has passed: issued or dropped. */
  private due = 0;
  private issuing = true;
  private timer: TimerHandle | undefined;
  private settle: (() => void) | null = null;

  constructor(client: BenchClient, options: OpenLoopOptions) {
    super(client, options);
    const { ratePerSec } = options;
    this.maxInFlight = options.maxInFlight ?? 1024;
    assert(Number.isFinite(ratePerSec) && ratePerSec > 0, 'ratePerSec is positive');
    assert(
      Number.isInteger(this.maxInFlight) && this.maxInFlight >= 1,
      'maxInFlight is a positive integer',
    );
    this.intervalUs = 1_000_000 / ratePerSec;
  }

  protected issueAll(): Promise<void> {
    return new Promise((resolve) => {
      this.settle = resolve;
      this.tick();
    });
  }

  protected override stopIssuing(): void {
    this.timer?.cancel();
    this.issuing = false;
  }

  protected override afterOp(): void {
    this.settleIfIdle();
  }

  /** Issues (or drops) every operation due by now, then sleeps until the next one is due. */
  private readonly tick = (): void => {
    const nowUs = this.clock.nowUs();
    let dueUs = this.dueUs();
    while (!this.stopping && dueUs <= nowUs && dueUs < this.deadlineUs) {
      this.issueOrDrop(dueUs);
      this.due++;
      dueUs = this.dueUs();
    }
    if (!this.stopping && dueUs < this.deadlineUs) {
      this.timer = this.clock.setTimer(dueUs - nowUs, this.tick);
    } else {
      this.issuing = false;
      this.settleIfIdle();
    }
  };

  private dueUs(): number {
    return this.runStartUs + this.due * this.intervalUs;
  }

  private issueOrDrop(dueUs: number): void {
    if (this.inFlight < this.maxInFlight) void this.perform(dueUs);
    else if (dueUs >= this.measuredStartUs) this.dropped++;
  }

  /** The run is over once nothing more will be issued and nothing is in flight. */
  private settleIfIdle(): void {
    if ((this.issuing && !this.stopping) || this.inFlight > 0) return;
    this.timer?.cancel();
    this.settle?.();
  }
}
