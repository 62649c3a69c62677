import type { Operation } from './history.js';
import { normalizeKey, partitionByKey } from './normalize.js';
import { preCheckKey } from './pre-checks.js';
import { searchKey } from './search.js';
import { validateOperations } from './validate-history.js';
import type { Witness } from './witness.js';

export interface CheckOptions {
  /**
   * Wall-clock budget for each key, in milliseconds. A key that runs out gets verdict `unknown`,
   * which fails the check: an unfinished search proves nothing. Rerun with a larger budget before
   * filing a bug.
   */
  budgetMsPerKey: number;
  /** Millisecond clock; defaults to performance.now. Tests inject one to exercise the budget. */
  now?: () => number;
}

export type Verdict = 'ok' | 'violation' | 'unknown';

export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** Ops that took part in the check after normalization (fail ops, info gets and droppable info puts removed). */
  ops: number;
  /** Distinct (linearized set, state) configurations the search explored; 0 for a pre-check verdict. */
  configs: number;
  /** Time spent on the key, by the `now` clock. */
  ms: number;
  /** Set when verdict is `violation`. */
  witness: Witness | null;
}

export interface CheckResult {
  /** True only when every key is `ok`: both `violation` and `unknown` fail the check. */
  ok: boolean;
  /** One result per key, in order of each key's first appearance in the history. */
  keys: KeyResult[];
  violations: KeyResult[];
  /** Number of keys whose verdict is `unknown`. */
  unknown: number;
  /** Sum of KeyResult.ops. */
  opsChecked: number;
  /** Number of `info` operations in the input history. */
  indeterminateOps: number;
}

/**
 * Checks a get/put/delete history for linearizability, key by key (linearizability-testing.md §1.7).
 * Each key is a register whose state is a string or null (absent), initially absent. Throws on a
 * malformed history, including one where a put value repeats on a key.
 */
export function checkHistory(ops: readonly Operation[], options: CheckOptions): CheckResult {
  const budget = options.budgetMsPerKey;
  if (typeof budget !== 'number' || Number.isNaN(budget) || budget < 0) {
    throw new RangeError('options.budgetMsPerKey must be a non-negative number of milliseconds');
  }
  const now = options.now ?? (() => performance.now());
  validateOperations(ops);

  const keys: KeyResult[] = [];
  let indeterminateOps = 0;
  for (const op of ops) if (op.status === 'info') indeterminateOps++;
  for (const [key, keyOps] of partitionByKey(ops)) keys.push(checkKey(key, keyOps, budget, now));

  const violations = keys.filter((k) => k.verdict === 'violation');
  const unknown = keys.filter((k) => k.verdict === 'unknown').length;
  return {
    ok: violations.length === 0 && unknown === 0,
    keys,
    violations,
    unknown,
    opsChecked: keys.reduce((sum, k) => sum + k.ops, 0),
    indeterminateOps,
  };
}

function checkKey(
  key: string,
  ops: readonly Operation[],
  budget: number,
  now: () => number,
): KeyResult {
  const start = now();
  const normalized = normalizeKey(ops);
  const early = preCheckKey(key, ops, normalized);
  if (early !== null) {
    return {
      key,
      verdict: 'violation',
      ops: normalized.length,
      configs: 0,
      ms: now() - start,
      witness: early,
    };
  }
  const outcome = searchKey(key, normalized, { now, deadline: start + budget });
  let witness = outcome.witness;
  if (witness !== null) {
    // The search works on normalized ops only; name the writer from the full key history so the
    // report points at the put even when it was an info put.
    const failed = ops.find((op) => op.id === witness?.failedOp);
    const value = failed?.f === 'get' ? failed.value : null;
    const writer =
      value === null ? undefined : ops.find((op) => op.f === 'put' && op.value === value);
    witness = { ...witness, writer: writer === undefined ? null : writer.id };
  }
  return {
    key,
    verdict: outcome.verdict,
    ops: normalized.length,
    configs: outcome.configs,
    ms: now() - start,
    witness,
  };
}
