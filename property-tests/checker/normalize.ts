import type { OpKind, Operation } from './history.js';

/**
 * One operation of a key's sub-history as the search sees it, after normalization
 * (linearizability-testing.md §1.7 steps 2 and 4).
 */
export interface KeyOp {
  readonly id: number;
  readonly f: OpKind;
  /** put: the value written. get: the value read (null = absent). delete: null. */
  readonly value: string | null;
  /** delete: whether the key existed, or null when the outcome is unknown (an info delete). */
  readonly existed: boolean | null;
  readonly call: number;
  /** +Infinity for an open indeterminate op, which may be linearized at any point after its call. */
  readonly ret: number;
  /**
   * True when every linearization must contain the op: ok ops, and info puts whose value some read
   * observed. The search may stop once all required ops are placed; open ops then go "last", which
   * for a register is the same as never taking effect.
   */
  readonly required: boolean;
}

/** Splits a history by key. Sound by locality: every operation touches exactly one key. */
export function partitionByKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  return byKey;
}

/**
 * Normalizes one key's sub-history:
 * - `fail` ops are removed, because fail means the op definitely had no effect;
 * - `info` gets are removed, because a read has no effect;
 * - an `info` put whose value a completed get observed gets `ret := max(call, earliest observing
 *   ret)` and becomes required: the put must precede the observing read's linearization point,
 *   which is at most that read's ret, and nothing else writes the value;
 * - an `info` put never observed is dropped when that is sound (see below), otherwise kept open;
 * - an `info` delete is dropped when that is sound, otherwise kept open with an unknown outcome.
 *
 * When dropping is sound: take any linearization that contains an open op X and remove X. Only the
 * ops between X and the next put or delete see a different state, and only an op that observes what
 * X wrote can notice. For a put that is a get of its value (there is none, or the put would count
 * as observed) or an ok delete with existed=true; for a delete, a get of absent or an ok delete
 * with existed=false. If no such observer has ret >= X.call (closed intervals: equal times are
 * concurrent), none can follow X, and the history is linearizable with X if and only if it is
 * without X. With a conditional op such as a failed compare-and-set this guard would be needed for
 * every read too (linearizability-testing.md §1.7 4(b)); this model has none.
 */
export function normalizeKey(ops: readonly Operation[]): KeyOp[] {
  const earliestObservation = new Map<string, number>();
  let latestPresenceRet = -Infinity;
  let latestAbsenceRet = -Infinity;
  for (const op of ops) {
    if (op.status !== 'ok') continue;
    if (op.f === 'get' && op.value !== null) {
      const seen = earliestObservation.get(op.value);
      if (seen === undefined || op.ret < seen) earliestObservation.set(op.value, op.ret);
    } else if (op.f === 'get' || (op.f === 'delete' && op.existed === false)) {
      latestAbsenceRet = Math.max(latestAbsenceRet, op.ret);
    } else if (op.f === 'delete') {
      latestPresenceRet = Math.max(latestPresenceRet, op.ret);
    }
  }

  const out: KeyOp[] = [];
  for (const op of ops) {
    if (op.status === 'fail') continue;
    if (op.status === 'ok') {
      out.push(keyOp(op, op.ret, true));
      continue;
    }
    if (op.f === 'put') {
      const observed = op.value === null ? undefined : earliestObservation.get(op.value);
      if (observed !== undefined) out.push(keyOp(op, Math.max(op.call, observed), true));
      else if (latestPresenceRet >= op.call) out.push(keyOp(op, Infinity, false));
    } else if (op.f === 'delete' && latestAbsenceRet >= op.call) {
      out.push({ ...keyOp(op, Infinity, false), existed: null });
    }
  }
  return out;
}

function keyOp(op: Operation, ret: number, required: boolean): KeyOp {
  return { id: op.id, f: op.f, value: op.value, existed: op.existed, call: op.call, ret, required };
}
