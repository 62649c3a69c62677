import type { MutantName } from '../../src/config/mutants.js';
import { describeFailure, type MutantOutcome } from './report.js';
import { runSuite } from './suite.js';
import type { ScenarioSizes } from './scenario.js';

/**
 * Every mutant of src/config/mutants.ts; the suite must kill each within 100 scenarios.
 *
 * mergeByArrival needs a new owner whose writes reach the index before the old owner's log: the
 * new owner takes writes of a moved slot at once, and move-key faults with `slowMergeUs` make the
 * old owner's log merge late. Its stale version then shows once the key leaves the new owner's
 * cache: when the slot moves straight back, or in the final reads of the index.
 */
export const killableMutants: readonly MutantName[] = [
  'ackBeforeCommit',
  'acceptTornEntries',
  'skipMergeOnHandoff',
  'noDacInvalidation',
  'noFencing',
  'mergeByArrival',
];

/** Runs up to `budget` scenarios per mutant and reports the first that failed. */
export async function checkMutants(
  mutants: readonly MutantName[],
  seed: number,
  budget: number,
  sizes?: ScenarioSizes,
): Promise<MutantOutcome[]> {
  const outcomes: MutantOutcome[] = [];
  for (const mutant of mutants) {
    const summary = await runSuite({
      runs: budget,
      seed,
      mutants: { [mutant]: true },
      ...(sizes === undefined ? {} : { sizes }),
    });
    if (summary.failure?.failure?.kind === 'harness') {
      throw new Error(`the harness failed under ${mutant}: ${summary.failure.failure.message}`);
    }
    outcomes.push({
      mutant,
      killedAt: summary.firstFailureAt,
      budget,
      how: summary.failure === null ? '' : describeFailure(summary.failure),
    });
  }
  return outcomes;
}
