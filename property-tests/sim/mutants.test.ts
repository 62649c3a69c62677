import { describe, expect, it } from 'vitest';
import { checkMutants, killableMutants } from './mutant-check.js';
import { formatMutants } from './report.js';
import { runSuite } from './suite.js';

const seed = 4242;
const budget = 100;

/**
 * Each mutant breaks one protocol rule in the real code (src/config/mutants.ts). The suite must
 * notice every one within 100 scenarios, while the unmutated system passes the very same scenarios.
 */
describe('mutants', () => {
  it('kills every mutant within 100 scenarios', async () => {
    const outcomes = await checkMutants(killableMutants, seed, budget);
    console.log(formatMutants(outcomes));
    for (const o of outcomes) expect(o.killedAt, o.mutant).not.toBeNull();
  }, 120_000);

  it('passes the same scenarios without mutants', async () => {
    const summary = await runSuite({ runs: budget, seed });
    expect(summary.failure?.failure ?? null).toBeNull();
  }, 120_000);
});
