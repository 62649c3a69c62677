import { int, percent, ratio, round, type HitRatio } from './report.js';
import type { TimelinePoint } from './timeline.js';
import type { BenchStats, BenchTarget } from './types.js';

/**
 * One second (one report period) of a `dinomo bench` run: the runner's throughput, latency and
 * errors, plus what the cluster's counters did in that second.
 */
export interface BenchTimelinePoint extends TimelinePoint {
  /** The repetition this second belongs to; 1 is the first. `second` restarts at 0 in each. */
  repetition: number;
  /** KN-DPM round trips per operation the cluster served in this second. */
  rtsPerOp: number;
  /** Fractions of this second's gets by how they were served (not-found gets are in none). */
  hits: HitRatio;
}

/** Where each counter of a snapshot sits; a snapshot is `fieldCount` consecutive numbers. */
const Field = { gets: 0, total: 1, rts: 2, value: 3, shortcut: 4, log: 5, miss: 6 } as const;
type Field = (typeof Field)[keyof typeof Field];
const fieldCount = 7;

function writeCounters(into: Float64Array, offset: number, stats: BenchStats): void {
  into[offset + Field.gets] = stats.ops.gets;
  into[offset + Field.total] = stats.ops.total;
  into[offset + Field.rts] = stats.rts.total;
  into[offset + Field.value] = stats.hits.value;
  into[offset + Field.shortcut] = stats.hits.shortcut;
  into[offset + Field.log] = stats.hits.log;
  into[offset + Field.miss] = stats.hits.miss;
}

/**
 * Samples `target.stats()` once per report period, as the runner closes it (pass `onPeriod` to
 * `runWorkload` or `runOpenLoop`), and turns consecutive snapshots into per-second round trips and
 * hit fractions. Only the seven counters it needs are kept, in one growing Float64Array, so a long
 * run costs a few bytes per second. A target whose `stats()` returns a promise is sampled all the
 * same: the promises are awaited in `finish`, after the run, and a snapshot's place is fixed when
 * its period closes, whatever order the promises settle in.
 */
export class StatsTimeline {
  private counters = new Float64Array(16 * fieldCount);
  private readonly periods: TimelinePoint[] = [];
  private readonly pending: Promise<void>[] = [];
  private failure: { error: unknown } | null = null;

  constructor(private readonly target: Pick<BenchTarget, 'stats'>) {}

  /** The runner's `onPeriod`. It never throws: a failed snapshot is reported by `finish`. */
  readonly onPeriod = (point: TimelinePoint): void => {
    const index = this.periods.length;
    this.periods.push(point);
    this.reserve(index + 1);
    let stats: BenchStats | Promise<BenchStats>;
    try {
      stats = this.target.stats();
    } catch (error) {
      this.failure ??= { error };
      return;
    }
    if (isPromiseLike(stats)) {
      this.pending.push(
        Promise.resolve(stats).then(
          (s) => writeCounters(this.counters, index * fieldCount, s),
          (error: unknown) => void (this.failure ??= { error }),
        ),
      );
    } else {
      writeCounters(this.counters, index * fieldCount, stats);
    }
  };

  /** Periods closed so far. */
  get length(): number {
    return this.periods.length;
  }

  /**
   * The points of the run: each period's counters minus the previous period's, the first minus
   * `base` (the runner's `statsBefore`, taken as the measured phase began). Throws the error of a
   * snapshot that failed.
   */
  async finish(base: BenchStats, repetition: number): Promise<BenchTimelinePoint[]> {
    await Promise.all(this.pending);
    if (this.failure !== null) throw this.failure.error;
    const previous = new Float64Array(fieldCount);
    writeCounters(previous, 0, base);
    const c = this.counters;
    return this.periods.map((point, i) => {
      const at = i * fieldCount;
      const delta = (field: Field): number => (c[at + field] ?? 0) - (previous[field] ?? 0);
      const gets = delta(Field.gets);
      const result: BenchTimelinePoint = {
        ...point,
        repetition,
        rtsPerOp: round(ratio(delta(Field.rts), delta(Field.total)), 3),
        hits: {
          value: round(ratio(delta(Field.value), gets), 4),
          shortcut: round(ratio(delta(Field.shortcut), gets), 4),
          log: round(ratio(delta(Field.log), gets), 4),
          miss: round(ratio(delta(Field.miss), gets), 4),
        },
      };
      previous.set(c.subarray(at, at + fieldCount));
      return result;
    });
  }

  private reserve(snapshots: number): void {
    if (snapshots * fieldCount <= this.counters.length) return;
    const grown = new Float64Array(this.counters.length * 2);
    grown.set(this.counters);
    this.counters = grown;
  }
}

function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as Partial<PromiseLike<T>>).then === 'function';
}

/** The timeline as a text table: one row per second, with round trips and hit types. */
export function formatBenchTimeline(points: readonly BenchTimelinePoint[]): string {
  const showRepetition = points.some((p) => p.repetition !== 1);
  const header = [
    ...(showRepetition ? ['rep'] : []),
    'second',
    'ops/s',
    'p50 µs',
    'p99 µs',
    'RTs/op',
    'value',
    'shortcut',
    'log',
    'miss',
    'errors',
  ];
  const rows = [header];
  for (const p of points) {
    rows.push([
      ...(showRepetition ? [String(p.repetition)] : []),
      String(p.second),
      int(p.opsPerSec),
      int(p.p50Us),
      int(p.p99Us),
      p.rtsPerOp.toFixed(2),
      percent(p.hits.value),
      percent(p.hits.shortcut),
      percent(p.hits.log),
      percent(p.hits.miss),
      int(p.errors),
    ]);
  }
  return formatTable(rows, showRepetition ? 2 : 1);
}

/**
 * Rows of cells as aligned columns: the first `leftColumns` left-aligned, the rest right-aligned
 * (numbers), two spaces apart.
 */
export function formatTable(rows: readonly (readonly string[])[], leftColumns = 1): string {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, col) => (widths[col] = Math.max(widths[col] ?? 0, cell.length)));
  return rows
    .map((row) =>
      row
        .map((cell, col) =>
          col < leftColumns ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
