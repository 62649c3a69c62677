import type { LoadResult, RunOpCounts, RunResult } from './runner.js';
import type { TimelinePoint } from './timeline.js';
import type { BenchStats } from './types.js';

/** What was run, as it appears in the report. Cluster options left to the cluster's default are null. */
export interface BenchConfig {
  workload: string;
  readFraction: number;
  keys: number;
  zipf: number;
  scramble: boolean;
  valueBytes: number;
  concurrency: number;
  durationSec: number;
  seed: number;
  kns: number | null;
  threadsPerKn: number | null;
  cacheBytesPerThread: number | null;
  regionBytes: number | null;
}

/** Fractions of the gets of the measured phase, by how the cluster served them. */
export interface HitRatio {
  value: number;
  shortcut: number;
  log: number;
  miss: number;
}

/** The result of one benchmark run: the object `dinomo demo --json` prints. */
export interface BenchReport {
  opsPerSec: number;
  latencyUs: { p50: number; p99: number; p999: number; max: number; mean: number };
  /** KN-DPM round trips per operation, from the cluster's counters over the measured phase. */
  rtsPerOp: number;
  hitRatio: HitRatio;
  /** Average round trips per miss over the measured phase. */
  missCostRts: number;
  dpmBytesUsed: number;
  cacheBytesUsed: number;
  ops: RunOpCounts;
  /** Failed operations by code; `DRAIN_TIMEOUT` counts operations abandoned at the end. */
  errors: Record<string, number>;
  durationSec: number;
  timeline: TimelinePoint[];
  load: { keys: number; durationSec: number; opsPerSec: number } | null;
  config: BenchConfig;
  /** Reconfigurations during the run (`dinomo demo --elastic`), in order. */
  events?: ElasticEvent[];
}

/** A KN added, removed or failed during a run, and what it cost. */
export interface ElasticEvent {
  /** Seconds since the run started. */
  atSec: number;
  kind: 'add' | 'remove' | 'fail';
  knId: number;
  slotsMoved: number;
  durationMs: number;
  maxPauseMs: number | null;
  maxReadPauseMs: number | null;
  detectMs: number | null;
  failoverMs: number | null;
}

/** One line per reconfiguration, for the report. */
export function formatEvent(e: ElasticEvent): string {
  const at = `t=${e.atSec.toFixed(1)}s`;
  const reads = e.maxReadPauseMs === null ? '' : ` (reads ${e.maxReadPauseMs.toFixed(1)} ms)`;
  const pause =
    e.maxPauseMs === null ? '' : `, longest slot pause ${e.maxPauseMs.toFixed(1)} ms${reads}`;
  if (e.kind === 'fail') {
    return (
      `${at} fail KN ${e.knId}: detected after ${(e.detectMs ?? 0).toFixed(0)} ms, ` +
      `its ${int(e.slotsMoved)} slots served again after ${(e.failoverMs ?? e.durationMs).toFixed(0)} ms`
    );
  }
  return `${at} ${e.kind} KN ${e.knId}: ${int(e.slotsMoved)} slots moved in ${e.durationMs.toFixed(0)} ms${pause}`;
}

/** The difference of two cumulative stats snapshots, for the counters a report uses. */
export interface StatsDelta {
  gets: number;
  total: number;
  rts: number;
  hits: BenchStats['hits'];
  missCostRts: number;
}

export function diffStats(before: BenchStats, after: BenchStats): StatsDelta {
  const misses = after.hits.miss - before.hits.miss;
  // missCostRts is an average since start; weighting it by the miss counts recovers the RTs spent on
  // the misses of this phase alone.
  const missRts = after.missCostRts * after.hits.miss - before.missCostRts * before.hits.miss;
  return {
    gets: after.ops.gets - before.ops.gets,
    total: after.ops.total - before.ops.total,
    rts: after.rts.total - before.rts.total,
    hits: {
      value: after.hits.value - before.hits.value,
      shortcut: after.hits.shortcut - before.hits.shortcut,
      log: after.hits.log - before.hits.log,
      miss: misses,
      notFound: after.hits.notFound - before.hits.notFound,
    },
    missCostRts: misses > 0 ? missRts / misses : 0,
  };
}

export function buildReport(
  run: RunResult,
  config: BenchConfig,
  load: LoadResult | null = null,
): BenchReport {
  const delta = diffStats(run.statsBefore, run.statsAfter);
  const elapsedSec = run.elapsedUs / 1e6;
  const errors = { ...run.errors };
  if (run.abandoned > 0) errors['DRAIN_TIMEOUT'] = run.abandoned;
  const { p50, p99, p999, max, mean } = run.latencyUs;
  return {
    opsPerSec: Math.round(run.ops.total / elapsedSec),
    latencyUs: { p50, p99, p999, max, mean },
    rtsPerOp: round(ratio(delta.rts, delta.total), 3),
    hitRatio: {
      value: round(ratio(delta.hits.value, delta.gets), 4),
      shortcut: round(ratio(delta.hits.shortcut, delta.gets), 4),
      log: round(ratio(delta.hits.log, delta.gets), 4),
      miss: round(ratio(delta.hits.miss, delta.gets), 4),
    },
    missCostRts: round(delta.missCostRts, 3),
    dpmBytesUsed: run.statsAfter.dpm.bytesUsed,
    cacheBytesUsed: run.statsAfter.cache.bytesUsed,
    ops: { ...run.ops },
    errors,
    durationSec: round(elapsedSec, 3),
    timeline: run.timeline,
    load: load === null ? null : loadSummary(load),
    config,
  };
}

function loadSummary(load: LoadResult): NonNullable<BenchReport['load']> {
  const durationSec = load.elapsedUs / 1e6;
  return {
    keys: load.keys,
    durationSec: round(durationSec, 3),
    opsPerSec: durationSec > 0 ? Math.round(load.keys / durationSec) : 0,
  };
}

/** A ratio that is 0, not NaN, when nothing was counted (JSON has no NaN). */
export function ratio(part: number, whole: number): number {
  return whole > 0 ? part / whole : 0;
}

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** The report as a text table for a terminal. */
export function formatReport(report: BenchReport): string {
  const c = report.config;
  const lines = [
    `workload       ${c.workload} (${percent(c.readFraction, 0)} get), ${int(c.keys)} keys, ` +
      `zipf ${c.zipf}${c.scramble ? ' scrambled' : ''}, ${int(c.valueBytes)}-byte values`,
    `cluster        ${clusterLine(c)}`,
    `throughput     ${int(report.opsPerSec)} ops/s over ${report.durationSec.toFixed(1)} s ` +
      `(${int(report.ops.total)} ops: ${int(report.ops.gets)} gets, ${int(report.ops.puts)} puts)`,
    `latency (µs)   p50 ${int(report.latencyUs.p50)}   p99 ${int(report.latencyUs.p99)}   ` +
      `p99.9 ${int(report.latencyUs.p999)}   max ${int(report.latencyUs.max)}`,
    `round trips    ${report.rtsPerOp.toFixed(2)} per op, ${report.missCostRts.toFixed(2)} per miss`,
    `gets served    value ${percent(report.hitRatio.value)}   shortcut ${percent(report.hitRatio.shortcut)}   ` +
      `log ${percent(report.hitRatio.log)}   miss ${percent(report.hitRatio.miss)}` +
      (report.ops.getsNotFound > 0 ? `   (${int(report.ops.getsNotFound)} not found)` : ''),
    `memory         DPM ${bytes(report.dpmBytesUsed)} used, cache ${bytes(report.cacheBytesUsed)} used`,
    `errors         ${errorLine(report.errors)}`,
  ];
  if (report.load !== null) {
    const l = report.load;
    lines.push(
      `load           ${int(l.keys)} keys in ${l.durationSec.toFixed(1)} s (${int(l.opsPerSec)} puts/s)`,
    );
  }
  for (const e of report.events ?? []) lines.push(`reconfigured   ${formatEvent(e)}`);
  lines.push('', formatTimeline(report.timeline));
  return lines.join('\n') + '\n';
}

function clusterLine(c: BenchConfig): string {
  const parts = [
    `${c.kns ?? 'default'} KN x ${c.threadsPerKn ?? 'default'} threads`,
    `cache ${c.cacheBytesPerThread === null ? 'default' : bytes(c.cacheBytesPerThread)}/thread`,
    `region ${c.regionBytes === null ? 'default' : bytes(c.regionBytes)}`,
    `concurrency ${c.concurrency}`,
    `seed ${c.seed}`,
  ];
  return parts.join(', ');
}

export function formatTimeline(points: readonly TimelinePoint[]): string {
  const rows = [['second', 'ops/s', 'p50 µs', 'p99 µs', 'errors']];
  for (const p of points)
    rows.push([String(p.second), int(p.opsPerSec), int(p.p50Us), int(p.p99Us), int(p.errors)]);
  const widths =
    rows[0]?.map((_, col) => Math.max(...rows.map((row) => (row[col] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row.map((cell, col) =>
        col === 0 ? cell.padEnd(widths[col] ?? 0) : cell.padStart(widths[col] ?? 0),
      ),
    )
    .map((row) => row.join('  '))
    .join('\n');
}

/** `none`, or `CODE count` pairs: the errors line of a report. */
export function errorLine(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  if (entries.length === 0) return 'none';
  return entries.map(([code, count]) => `${code} ${int(count)}`).join(', ');
}

/** A whole number with thousands separators. */
export function int(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function percent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** A byte count in B, KiB, MiB or GiB. */
export function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  if (value < 1024 ** 2) return `${(value / 1024).toFixed(1)} KiB`;
  if (value < 1024 ** 3) return `${(value / 1024 ** 2).toFixed(1)} MiB`;
  return `${(value / 1024 ** 3).toFixed(2)} GiB`;
}
