import type { MutantName } from '../../src/config/mutants.js';
import { describeFailure, type MutantOutcome } from './report.js';
import { runSuite } from './suite.js';
import type { ScenarioSizes } from './scenario.js';

/**
 * Mutants the current scenarios kill, and those they cannot kill yet, with the reason.
 *
 * mergeByArrival is equivalent to the real system as long as every handoff merges the old owner's
 * log before the new owner writes: then a key's versions always reach the merge in log order. It
 * did expose a real bug while that rule was broken (moves planned against a stale slot map gave a
 * slot to two threads); KN failure with fencing (issue 4) is where it should die for good.
 */
export const killableMutants: readonly MutantName[] = [
  'ackBeforeCommit',
  'acceptTornEntries',
  'skipMergeOnHandoff',
  'noDacInvalidation',
];
export const pendingMutants: Readonly<Partial<Record<MutantName, string>>> = {
  mergeByArrival:
    'equivalent while handoffs merge the old log first; waits for KN failure (issue 4)',
};

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
      how:
        summary.failure === null
          ? (pendingMutants[mutant] ?? '')
          : describeFailure(summary.failure),
    });
  }
  return outcomes;
}
