import type { MutantName } from '../../src/config/mutants.js';
import { describeFailure, type MutantOutcome } from './report.js';
import { runSuite } from './suite.js';
import type { ScenarioSizes } from './scenario.js';

/**
 * Mutants the current scenarios can kill, and those that need scenarios that do not exist yet.
 * mergeByArrival needs a key's versions to reach the merge out of log order, which only ownership
 * moves (issue 4: add, remove and fail KN) produce; until then it is reported as pending.
 */
export const killableMutants: readonly MutantName[] = ['ackBeforeCommit', 'acceptTornEntries'];
export const pendingMutants: Readonly<Partial<Record<MutantName, string>>> = {
  mergeByArrival: 'needs reconfiguration scenarios (issue 4)',
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
