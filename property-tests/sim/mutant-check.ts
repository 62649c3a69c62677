import type { MutantName } from '../../src/config/mutants.js';
import { describeFailure, type MutantOutcome } from './report.js';
import { runSuite } from './suite.js';
import type { ScenarioSizes } from './scenario.js';

/**
 * Mutants the current scenarios kill, and those no scenario can kill, with the reason.
 *
 * mergeByArrival is an equivalent mutant of this design: two versions of one key never wait for
 * the merge at the same time out of version order. A handoff merges the old owner's log before the
 * new owner serves; a failover fences the failed thread and merges its log before anyone else takes
 * its slots; one chain holds its entries in version order, across restarts too (a restarted thread
 * writes in a newer epoch). Ordering by version is defence in depth. The mutant did expose one real
 * bug while a rule was broken (moves planned against a stale slot map gave a slot to two threads),
 * and with fencing switched off as well it would lose writes; on its own it cannot be observed.
 */
export const killableMutants: readonly MutantName[] = [
  'ackBeforeCommit',
  'acceptTornEntries',
  'skipMergeOnHandoff',
  'noDacInvalidation',
  'noFencing',
];
export const pendingMutants: Readonly<Partial<Record<MutantName, string>>> = {
  mergeByArrival:
    'equivalent: handoff and failover merge the old log before anyone else writes the key',
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
