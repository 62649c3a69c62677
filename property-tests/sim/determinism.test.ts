import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runScenario } from './run-scenario.js';
import { scenarioArb } from './scenario.js';

describe('simulator determinism', () => {
  it('gives the same trace hash and history for the same scenario, run twice', async () => {
    const scenarios = fc.sample(scenarioArb(), { seed: 99, numRuns: 4 });
    for (const scenario of scenarios) {
      const a = await runScenario(scenario);
      const b = await runScenario(scenario);
      expect(b.traceHash).toBe(a.traceHash);
      expect(b.ops).toEqual(a.ops);
      expect(a.events).toBeGreaterThan(100);
    }
  });

  it('gives a different trace for a different seed', async () => {
    const [scenario] = fc.sample(scenarioArb(), { seed: 5, numRuns: 1 });
    if (scenario === undefined) throw new Error('fast-check gave no scenario');
    const a = await runScenario(scenario);
    const b = await runScenario({ ...scenario, seed: scenario.seed + 1 });
    expect(b.traceHash).not.toBe(a.traceHash);
  });
});
