import type { Operation } from './history.js';
import type { KeyOp } from './normalize.js';
import { concurrentWindow, type Witness, type WitnessStep } from './witness.js';

/**
 * O(n log n) checks that run before the search. Each one proves a violation from real-time order
 * alone, names it better than an exhausted search could ("nobody wrote this", "it was overwritten
 * before you asked"), and costs nothing where the search might need seconds: refuting a history
 * means exploring every configuration before the violation, and open info ops multiply those.
 *
 * `ops` is the key's full sub-history, `keyOps` its normalized form. Garbage reads and reads from
 * the future are looked for first, then stale reads; within a kind, the get invoked first wins.
 */
export function preCheckKey(
  key: string,
  ops: readonly Operation[],
  keyOps: readonly KeyOp[],
): Witness | null {
  return badSource(key, ops, keyOps) ?? staleRead(key, keyOps);
}

/** A get returned a value no put wrote, a failed put's value, or a value written only later. */
function badSource(
  key: string,
  ops: readonly Operation[],
  keyOps: readonly KeyOp[],
): Witness | null {
  const writerByValue = new Map<string, Operation>();
  for (const op of ops) if (op.f === 'put' && op.value !== null) writerByValue.set(op.value, op);
  const reads = ops
    .filter((op) => op.f === 'get' && op.status === 'ok' && op.value !== null)
    .sort((a, b) => a.call - b.call || a.id - b.id);
  for (const get of reads) {
    const value = get.value as string;
    const writer = writerByValue.get(value);
    const getName = `get #${String(get.id)} returned ${JSON.stringify(value)}`;
    if (writer === undefined || writer.status === 'fail') {
      const reason =
        writer === undefined
          ? `${getName}, which no put on this key wrote`
          : `${getName}, which only put #${String(writer.id)} wrote, and that put failed ` +
            '(fail means it definitely did not take effect)';
      return witness(key, 'garbage-read', reason, [], get, writer?.id ?? null, keyOps);
    }
    if (writer.call > get.ret) {
      const reason =
        `${getName} and completed at ${String(get.ret)}, but put #${String(writer.id)} of that ` +
        `value was only invoked at ${String(writer.call)}`;
      return witness(key, 'read-from-future', reason, [], get, writer.id, keyOps);
    }
  }
  return null;
}

/**
 * A get returned something real time proves was gone:
 * - a value v whose put p returned before some required write w (a put or a delete) was invoked,
 *   while w returned before the get was invoked. Every linearization orders p < w < get, and only
 *   p writes v, so the get cannot see v;
 * - absent, while a required put q returned before the get was invoked and no delete can be
 *   linearized between them (none is invoked by the get's ret and returns at or after q's call).
 * This runs on normalized ops, so an observed info put counts with its clamped ret, and open info
 * deletes count as deletes that may land anywhere after their call.
 */
function staleRead(key: string, keyOps: readonly KeyOp[]): Witness | null {
  const putByValue = new Map<string, KeyOp>();
  for (const op of keyOps) if (op.f === 'put' && op.value !== null) putByValue.set(op.value, op);
  const writes = keyOps
    .filter((op) => op.required && op.f !== 'get')
    .sort((a, b) => a.ret - b.ret || a.id - b.id);
  const gets = keyOps.filter((op) => op.f === 'get').sort((a, b) => a.call - b.call || a.id - b.id);
  // Deletes by call, with the running maximum of ret, answer "is there a delete invoked by t that
  // returns at or after t'?" with a binary search.
  const deletes = keyOps.filter((op) => op.f === 'delete').sort((a, b) => a.call - b.call);
  const maxDeleteRet: number[] = [];
  for (const d of deletes) maxDeleteRet.push(Math.max(d.ret, maxDeleteRet.at(-1) ?? -Infinity));

  let next = 0;
  let lastWrite: KeyOp | undefined; // the write with the latest call among those returned so far
  let lastPut: KeyOp | undefined; // likewise among puts
  for (const get of gets) {
    for (; next < writes.length && (writes[next] as KeyOp).ret < get.call; next++) {
      const w = writes[next] as KeyOp;
      if (lastWrite === undefined || w.call > lastWrite.call) lastWrite = w;
      if (w.f === 'put' && (lastPut === undefined || w.call > lastPut.call)) lastPut = w;
    }
    if (get.value !== null) {
      const source = putByValue.get(get.value);
      if (source !== undefined && lastWrite !== undefined && lastWrite.call > source.ret) {
        const reason =
          `get #${String(get.id)} returned ${JSON.stringify(get.value)}, but ${name(lastWrite)} ` +
          `overwrote it: put #${String(source.id)} of that value returned at ${String(source.ret)}, ` +
          `#${String(lastWrite.id)} ran from ${String(lastWrite.call)} to ${String(lastWrite.ret)}, ` +
          `and the get was invoked at ${String(get.call)}`;
        const steps = [step(source), step(lastWrite)];
        return witness(key, 'stale-read', reason, steps, get, source.id, keyOps);
      }
    } else if (lastPut !== undefined && !deleteFits(lastPut.call, get.ret)) {
      const reason =
        `get #${String(get.id)} returned absent, but put #${String(lastPut.id)} returned at ` +
        `${String(lastPut.ret)}, before the get was invoked at ${String(get.call)}, and no delete ` +
        'can take effect between them';
      return witness(key, 'stale-read', reason, [step(lastPut)], get, null, keyOps);
    }
  }
  return null;

  /** Whether some delete has call <= latestCall and ret >= earliestRet. */
  function deleteFits(earliestRet: number, latestCall: number): boolean {
    let lo = 0;
    let hi = deletes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((deletes[mid] as KeyOp).call <= latestCall) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && (maxDeleteRet[lo - 1] as number) >= earliestRet;
  }
}

function name(op: KeyOp): string {
  return op.f === 'put'
    ? `put #${String(op.id)} of ${JSON.stringify(op.value)}`
    : `delete #${String(op.id)}`;
}

function step(op: KeyOp): WitnessStep {
  return { id: op.id, state: op.f === 'put' ? op.value : null };
}

function witness(
  key: string,
  kind: Witness['kind'],
  reason: string,
  linearization: WitnessStep[],
  get: { readonly id: number; readonly call: number; readonly ret: number },
  writer: number | null,
  keyOps: readonly KeyOp[],
): Witness {
  return {
    key,
    kind,
    reason,
    linearization,
    failedOp: get.id,
    writer,
    window: concurrentWindow(keyOps, get),
  };
}
