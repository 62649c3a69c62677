import { describe, expect, it } from 'vitest';
import { formatTier, tierFigures } from './report.js';
import { runSuite } from './suite.js';

/**
 * The fast tier for the clover baseline (docs/baselines.md): the same generated scenarios and faults
 * as DINOMO mode's, with clients spreading requests over every KN thread, so several threads write
 * the same key at once and only the chains' compare-and-swap orders them.
 */
describe('linearizability, simulated, clover mode (fast tier)', () => {
  it('finds no violation in 1000 scenarios with concurrent writers of the same keys', async () => {
    const summary = await runSuite({ runs: 1000, seed: 20261122, mode: 'clover' });
    const figures = tierFigures(summary);
    console.log(formatTier('clover fast tier (seed 20261122)', figures));
    if (summary.failure !== null) console.log(summary.failure.failure?.message);
    expect(summary.failure?.failure ?? null).toBeNull();
    expect(figures.ops).toBeGreaterThanOrEqual(100_000);
    expect(figures.coverage.writesAcrossCrash).toBeGreaterThan(0);
    expect(figures.coverage.opsAcrossDelay).toBeGreaterThan(0);
    expect(figures.faults.failovers).toBeGreaterThan(0);
    expect(figures.coverage.durableReads).toBeGreaterThan(0);
  }, 170_000);
});
