import { describe, expect, it } from 'vitest';
import { formatTier, tierFigures } from './report.js';
import { runSuite } from './suite.js';

/**
 * The fast tier for the shared-nothing baseline (docs/baselines.md, "DINOMO-N"): the same generated
 * scenarios and faults as DINOMO mode's, where every slot move and failover copies the moved keys
 * from the previous owners' partitions into the new owner's before it serves them.
 */
describe('linearizability, simulated, DINOMO-N mode (fast tier)', () => {
  it('finds no violation in 1000 scenarios while keys are copied between partitions', async () => {
    const summary = await runSuite({ runs: 1000, seed: 20261123, mode: 'dinomo-n' });
    const figures = tierFigures(summary);
    console.log(formatTier('DINOMO-N fast tier (seed 20261123)', figures));
    if (summary.failure !== null) console.log(summary.failure.failure?.message);
    expect(summary.failure?.failure ?? null).toBeNull();
    expect(figures.ops).toBeGreaterThanOrEqual(100_000);
    expect(figures.faults.handoffs).toBeGreaterThan(0);
    expect(figures.faults.failovers).toBeGreaterThan(0);
    expect(figures.coverage.opsAcrossHandoff).toBeGreaterThan(0);
    expect(figures.coverage.writesAcrossCrash).toBeGreaterThan(0);
    expect(figures.coverage.durableReads).toBeGreaterThan(0);
    // The copies happened: without them the tier would pass vacuously on moves of empty slots.
    expect(figures.coverage.keysCopied).toBeGreaterThan(0);
  }, 170_000);

  it('notices a thread that serves acquired slots without copying their keys', async () => {
    const summary = await runSuite({
      runs: 100,
      seed: 4242,
      mode: 'dinomo-n',
      mutants: { skipPartitionCopy: true },
    });
    expect(summary.failure?.failure?.kind).toBe('violation');
  }, 120_000);
});
