import { describe, expect, it } from 'vitest';
import { formatTier, tierFigures } from './report.js';
import { runSuite } from './suite.js';

/**
 * The fast tier of the linearizability suite: generated scenarios (topology, concurrent clients,
 * DPM crashes with torn writes, message delays, merge stalls, slot moves, added and removed KN
 * threads) run in the simulator against the real KN, DPM and
 * client code, and every history is checked. Fixed seeds keep CI reproducible; `npm run lincheck`
 * runs other seeds and bigger scenarios.
 */
describe('linearizability, simulated (fast tier)', () => {
  it('finds no violation in 1200 scenarios and checks at least 10^5 operations', async () => {
    const summary = await runSuite({ runs: 1200, seed: 20261121 });
    const figures = tierFigures(summary);
    console.log(formatTier('fast tier (seed 20261121)', figures));
    if (summary.failure !== null) console.log(summary.failure.failure?.message);
    expect(summary.failure?.failure ?? null).toBeNull();
    expect(figures.ops).toBeGreaterThanOrEqual(100_000);
    // Coverage: faults met operations, so the green result is not vacuous.
    expect(figures.coverage.writesAcrossCrash).toBeGreaterThan(0);
    expect(figures.coverage.opsAcrossDelay).toBeGreaterThan(0);
    expect(figures.coverage.blocksCleaned).toBeGreaterThan(0);
    expect(figures.faults.handoffs).toBeGreaterThan(0);
    expect(figures.coverage.opsAcrossHandoff).toBeGreaterThan(0);
    expect(figures.coverage.backpressureWaits).toBeGreaterThan(0);
    expect(figures.faults.tornWordsDropped).toBeGreaterThan(0);
    expect(figures.faults.tornBlocksRecovered).toBeGreaterThan(0);
    expect(figures.indeterminateShare).toBeGreaterThan(0);
    // KN failures met the workload: failovers finished, zombies were refused for their lease, a
    // failure struck a thread in the middle of a handoff, and failed ranks restarted.
    expect(figures.faults.failovers).toBeGreaterThan(0);
    expect(figures.faults.restarts).toBeGreaterThan(0);
    expect(figures.coverage.opsAcrossFailover).toBeGreaterThan(0);
    expect(figures.coverage.leaseRefusals).toBeGreaterThan(0);
    expect(figures.coverage.failuresDuringHandoff).toBeGreaterThan(0);
    // The durable state was checked too: keys read straight from the merged index.
    expect(figures.coverage.durableReads).toBeGreaterThan(0);
  }, 170_000);
});
