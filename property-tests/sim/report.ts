import type { MutantName } from '../../src/config/mutants.js';
import type { Coverage, FaultCounts, RunResult } from './run-scenario.js';
import type { SuiteSummary } from './suite.js';

/** The figures of one tier (linearizability-testing.md section 5.8), as plain data. */
export interface TierFigures {
  histories: number;
  ops: number;
  opsPerHistoryMean: number;
  opsPerHistoryMax: number;
  indeterminateShare: number;
  /** Per-run fault counts, summed. */
  faults: FaultCounts;
  /** Per-run coverage counters, summed (handoffMaxUs: the maximum). */
  coverage: Coverage;
  checkerMsP50: number;
  checkerMsP99: number;
  violations: number;
  simSecondsPerWallSecond: number;
  wallMs: number;
}

export function tierFigures(summary: SuiteSummary): TierFigures {
  const runs = summary.runs;
  const ops = sum(runs, (r) => r.ops.length);
  const checker = runs.map((r) => r.checkerMs).sort((a, b) => a - b);
  const simUs = sum(runs, (r) => r.simUs);
  return {
    histories: runs.length,
    ops,
    opsPerHistoryMean: runs.length === 0 ? 0 : ops / runs.length,
    opsPerHistoryMax: Math.max(0, ...runs.map((r) => r.ops.length)),
    indeterminateShare: ops === 0 ? 0 : sum(runs, (r) => r.infoOps) / ops,
    faults: sumFields(runs.map((r) => r.faults)),
    coverage: {
      ...sumFields(runs.map((r) => r.coverage)),
      handoffMaxUs: Math.max(0, ...runs.map((r) => r.coverage.handoffMaxUs)),
      failoverMaxUs: Math.max(0, ...runs.map((r) => r.coverage.failoverMaxUs)),
    },
    checkerMsP50: quantile(checker, 0.5),
    checkerMsP99: quantile(checker, 0.99),
    violations: runs.filter((r) => !r.ok).length,
    simSecondsPerWallSecond: summary.wallMs === 0 ? 0 : simUs / 1000 / summary.wallMs,
    wallMs: summary.wallMs,
  };
}

export function formatTier(title: string, f: TierFigures): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  return [
    `${title}`,
    `  histories checked      ${f.histories}`,
    `  operations             ${f.ops} (${f.opsPerHistoryMean.toFixed(0)} per history, max ${f.opsPerHistoryMax})`,
    `  indeterminate ops      ${pct(f.indeterminateShare)}`,
    `  faults injected        dpm-crash ${f.faults.dpmCrash}, delay ${f.faults.delay},` +
      ` merge-stall ${f.faults.mergeStall},` +
      ` move-slot ${f.faults.moveKey}, add-kn ${f.faults.addKn}, remove-kn ${f.faults.removeKn}` +
      ` (${f.faults.handoffs} handoffs done)` +
      `\n                         ` +
      ` fail-kn ${f.faults.failKn}, pause-kn ${f.faults.pauseKn}, partition-kn ${f.faults.partitionKn}` +
      ` (${f.faults.failovers} failovers done, ${f.faults.restarts} restarts with the same identity)` +
      `\n                         ` +
      ` (torn words dropped ${f.faults.tornWordsDropped}, torn tails cut by recovery ${f.faults.tornBlocksRecovered})`,
    `  coverage               ops across a crash ${f.coverage.opsAcrossCrash}` +
      ` (writes ${f.coverage.writesAcrossCrash}), ops across a delay ${f.coverage.opsAcrossDelay},` +
      ` ops across a handoff ${f.coverage.opsAcrossHandoff} (longest handoff ${f.coverage.handoffMaxUs} µs),` +
      ` blocks cleaned ${f.coverage.blocksCleaned}, back-pressure waits ${f.coverage.backpressureWaits}` +
      `\n                         ` +
      ` ops across a failover ${f.coverage.opsAcrossFailover} (longest failover ${f.coverage.failoverMaxUs} µs),` +
      ` requests refused for an expired lease ${f.coverage.leaseRefusals},` +
      ` failures during a handoff ${f.coverage.failuresDuringHandoff},` +
      ` keys read from the index at the end ${f.coverage.durableReads}` +
      (f.coverage.keysCopied > 0
        ? `, keys copied between partitions ${f.coverage.keysCopied}`
        : ''),
    `  checker time/history   p50 ${f.checkerMsP50.toFixed(1)} ms, p99 ${f.checkerMsP99.toFixed(1)} ms`,
    `  violations             ${f.violations}`,
    `  wall time              ${(f.wallMs / 1000).toFixed(1)} s (simulated/wall ${f.simSecondsPerWallSecond.toFixed(3)})`,
  ].join('\n');
}

/** One mutant's outcome: killed at which scenario (1-based), or survived the budget. */
export interface MutantOutcome {
  mutant: MutantName;
  killedAt: number | null;
  budget: number;
  how: string;
}

export function formatMutants(outcomes: readonly MutantOutcome[]): string {
  const killed = outcomes.filter((o) => o.killedAt !== null).length;
  const lines = [`mutants killed           ${killed}/${outcomes.length}`];
  for (const o of outcomes) {
    lines.push(
      o.killedAt === null
        ? `  ${o.mutant.padEnd(20)} survived ${o.budget} scenarios${o.how === '' ? '' : ` (${o.how})`}`
        : `  ${o.mutant.padEnd(20)} killed at scenario ${o.killedAt} by ${o.how}`,
    );
  }
  return lines.join('\n');
}

export function describeFailure(run: RunResult): string {
  return run.failure === null
    ? ''
    : `${run.failure.kind}: ${run.failure.message.split('\n')[0] ?? ''}`;
}

function sum(runs: readonly RunResult[], f: (r: RunResult) => number): number {
  let total = 0;
  for (const r of runs) total += f(r);
  return total;
}

/** Adds up records of numeric counters field by field. */
function sumFields<T extends object>(records: readonly T[]): T {
  const total: Record<string, number> = {};
  for (const record of records) {
    for (const [name, value] of Object.entries(record)) {
      total[name] = (total[name] ?? 0) + (value as number);
    }
  }
  return total as T;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}
