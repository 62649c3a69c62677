import { ConfigCache } from './config-cache.js';
import type { KeyOp } from './normalize.js';
import { concurrentWindow, type Witness, type WitnessStep } from './witness.js';
import { zobristKeys } from './zobrist.js';

/** What the search concluded for one key. */
export interface SearchOutcome {
  readonly verdict: 'ok' | 'violation' | 'unknown';
  /** Distinct configurations explored (cache size). */
  readonly configs: number;
  readonly witness: Witness | null;
}

/** When to give up on one key. */
export interface SearchLimits {
  readonly now: () => number;
  /** A `now()` value after which the verdict is `unknown`. */
  readonly deadline: number;
}

/** The clock is read once per this many loop iterations (a power of two minus one, as a mask). */
const CLOCK_MASK = 4095;
/**
 * A search that needs this much memo has gone exponential; it ends as `unknown` like a budget
 * overrun rather than letting a typed-array allocation crash the test worker.
 */
const MAX_CACHE_BYTES = 512 * 1024 * 1024;

const PUT = 0;
const GET = 1;
const DELETE = 2;
/**
 * Abstract register states. Every value no get ever returns is collapsed into UNREAD: no later op
 * can tell two such values apart (a get compares with the value it returned, a delete only asks
 * "present or absent"), so the collapse merges configurations without changing any verdict.
 * Values some get returned get indexes 2, 3, ….
 */
const ABSENT = 0;
const UNREAD = 1;
/** For a get: a value no kept put wrote, never equal to a state. For a delete: outcome unknown. */
const NONE = -1;

/** Stack frame kinds: a required op alone, or an open op of either kind placed just before it. */
const PLAIN = 0;
const WITH_OPEN_PUT = 1;
const WITH_OPEN_DELETE = 2;

/**
 * Porcupine's checkSingle (WGL with a memo) over one key's normalized sub-history.
 *
 * The call and return entries of the required ops are sorted by time with calls first on ties,
 * which makes intervals closed: ops with equal timestamps are concurrent. They are linked in a
 * doubly linked list held in typed arrays. Walking from the head, a call whose op is legal in the
 * current state is linearized: its bit is set, the configuration is looked up in the memo, and if
 * it is new the call and its return are unlinked ("lifted") and the walk restarts at the head.
 * Reaching a return entry means that op's deadline has come without it being linearized, so the
 * search backtracks. It accepts as soon as every required op is linearized (open ops then go last,
 * which for a register is the same as never taking effect).
 *
 * Open ops (indeterminate, ret = +Infinity) are what make such searches expensive: each stays
 * concurrent with everything after it. They are kept out of the list, and only used in a combined
 * move right before a required op that needs them. None of the restrictions below loses a
 * linearization: any linearization can be rewritten into one that obeys them.
 * - Open puts all write values nobody read (or they would not be open), so each one sets the
 *   abstract state to UNREAD, and open deletes set it to ABSENT.
 * - An open op matters only if the op right after it observes its effect. After an open put, the
 *   ops that could see the state before the next write are gets of its unread value (there are
 *   none) and ok deletes with existed=true; after an open delete, gets of absent and ok deletes
 *   with existed=false. If the next op is no such observer, the open op can be removed (it accepts
 *   any output, and nothing saw the state it wrote). So an open op is only placed right before a
 *   required observer that would be illegal without it.
 * - Among the open ops of one kind not yet used, only the one invoked first is used: swapping a
 *   later one for it keeps every real-time constraint (its call is no later, and neither has a
 *   deadline) and every state. The set used is then a prefix in call order, and a count says which.
 * An open op can go at the current point if no unlinearized required op returned before its call,
 * that is if its call is no later than the first return entry in the list.
 */
export function searchKey(key: string, ops: readonly KeyOp[], limits: SearchLimits): SearchOutcome {
  const n = ops.length;

  // Compile the ops to small integers so a step is a few array reads.
  const stateIndex = new Map<string, number>();
  let stateCount = 2;
  for (const op of ops) {
    if (op.f === 'get' && op.value !== null && !stateIndex.has(op.value)) {
      stateIndex.set(op.value, stateCount++);
    }
  }
  const kind = new Uint8Array(n);
  const arg = new Int32Array(n);
  const required: number[] = [];
  const openPutOps: number[] = [];
  const openDeleteOps: number[] = [];
  for (let i = 0; i < n; i++) {
    const op = ops[i] as KeyOp;
    switch (op.f) {
      case 'put':
        kind[i] = PUT;
        arg[i] = stateIndex.get(op.value as string) ?? UNREAD;
        break;
      case 'get':
        kind[i] = GET;
        arg[i] = op.value === null ? ABSENT : (stateIndex.get(op.value) ?? NONE);
        break;
      case 'delete':
        kind[i] = DELETE;
        arg[i] = op.existed === null ? NONE : op.existed ? 1 : 0;
        break;
    }
    if (op.required) required.push(i);
    else if (op.f === 'put') openPutOps.push(i);
    else openDeleteOps.push(i);
  }
  const m = required.length;
  if (m === 0) return { verdict: 'ok', configs: 0, witness: null };
  const byCall = (a: number, b: number): number =>
    (ops[a] as KeyOp).call - (ops[b] as KeyOp).call || a - b;
  openPutOps.sort(byCall);
  openDeleteOps.sort(byCall);
  // A trailing +Infinity sentinel makes "no open op left" look like "not invoked yet".
  const openPutCall = Float64Array.from([
    ...openPutOps.map((i) => (ops[i] as KeyOp).call),
    Infinity,
  ]);
  const openDeleteCall = Float64Array.from([
    ...openDeleteOps.map((i) => (ops[i] as KeyOp).call),
    Infinity,
  ]);

  // Entries: position 0 is the list head; positions 1..2m hold the sorted call/return entries of
  // the required ops. Entry e < m is the call of required[e], e >= m the return of required[e - m].
  const order = Array.from({ length: 2 * m }, (_, e) => e);
  const timeOf = (e: number): number => {
    const op = ops[required[e < m ? e : e - m] as number] as KeyOp;
    return e < m ? op.call : op.ret;
  };
  order.sort((a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    return (a < m ? 0 : 1) - (b < m ? 0 : 1) || a - b;
  });
  const size = 2 * m + 1;
  const entryOp = new Int32Array(size);
  const entryTime = new Float64Array(size);
  const isCall = new Uint8Array(size);
  const match = new Int32Array(size);
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const callPos = new Int32Array(m);
  const retPos = new Int32Array(m);
  for (let p = 1; p < size; p++) {
    const e = order[p - 1] as number;
    const r = e < m ? e : e - m;
    entryOp[p] = required[r] as number;
    entryTime[p] = timeOf(e);
    if (e < m) {
      isCall[p] = 1;
      callPos[r] = p;
    } else {
      retPos[r] = p;
    }
    prev[p] = p - 1;
    next[p] = p + 1 < size ? p + 1 : -1;
  }
  next[0] = 1;
  for (let r = 0; r < m; r++) match[callPos[r] as number] = retPos[r] as number;

  const opKeys = zobristKeys(n, 0x5eed1);
  const stateKeys = zobristKeys(stateCount, 0x57a7e);
  const words = Math.ceil(n / 32);
  const bits = new Uint32Array(words);
  const cache = new ConfigCache(words);
  const stackEntry = new Int32Array(m);
  const stackMove = new Uint8Array(m);
  const stackState = new Int32Array(m);
  const stackConfig = new Int32Array(m);

  let depth = 0;
  let state = ABSENT;
  let hash = 0;
  let openPuts = 0;
  let openDeletes = 0;
  let bestDepth = -1;
  let bestFrames = 0;
  let bestFailed = -1;
  let bestStack = new Int32Array(0);
  let bestMoves = new Uint8Array(0);
  let iterations = 0;
  let entry = next[0];
  // Each configuration is walked twice: first trying plain moves only, then combined moves only.
  // Plain moves use no open op, so their subtrees finish first, and the memo can then prune the
  // configurations that combined moves reach with more open ops used (config-cache.ts).
  let combined = false;
  // Time of the first return entry in the list for the current configuration; NaN = not known yet.
  let firstReturn = NaN;

  for (;;) {
    if ((++iterations & CLOCK_MASK) === 0) {
      if (limits.now() > limits.deadline || cache.bytes > MAX_CACHE_BYTES) {
        return { verdict: 'unknown', configs: cache.size, witness: null };
      }
    }
    if (entry === -1) {
      // The list always ends with a return entry, so the walk stops at a return first.
      throw new Error(
        `checker invariant broken on key ${JSON.stringify(key)}: walked off the list`,
      );
    }

    if (isCall[entry] === 1) {
      const op = entryOp[entry] as number;
      const a = arg[op] as number;
      let legal: boolean;
      let after: number;
      let move = PLAIN;
      switch (kind[op]) {
        case PUT:
          legal = true;
          after = a;
          break;
        case GET:
          legal = a === state;
          after = a;
          if (!legal && a === ABSENT) move = WITH_OPEN_DELETE;
          break;
        default:
          legal = a === NONE || a === (state === ABSENT ? 0 : 1);
          after = ABSENT;
          if (!legal) move = a === 1 ? WITH_OPEN_PUT : WITH_OPEN_DELETE;
          break;
      }
      // Plain moves belong to the first walk, combined ones to the second.
      if (combined ? legal || move === PLAIN : !legal) {
        entry = next[entry] as number;
        continue;
      }
      if (combined) {
        if (Number.isNaN(firstReturn)) {
          let e = entry;
          while (isCall[e] === 1) e = next[e] as number;
          firstReturn = entryTime[e] as number;
        }
        legal =
          move === WITH_OPEN_PUT
            ? (openPutCall[openPuts] as number) <= firstReturn
            : (openDeleteCall[openDeletes] as number) <= firstReturn;
      }
      if (legal) {
        if (!combined) move = PLAIN;
        const puts = move === WITH_OPEN_PUT ? openPuts + 1 : openPuts;
        const deletes = move === WITH_OPEN_DELETE ? openDeletes + 1 : openDeletes;
        const word = op >>> 5;
        const bit = 1 << (op & 31);
        bits[word] = (bits[word] as number) | bit;
        hash = (hash ^ (opKeys[op] as number)) >>> 0;
        const config = cache.visit(
          (hash ^ (stateKeys[after] as number)) >>> 0,
          bits,
          after,
          puts,
          deletes,
        );
        if (config >= 0) {
          stackEntry[depth] = entry;
          stackMove[depth] = move;
          stackState[depth] = state;
          stackConfig[depth] = config;
          depth++;
          if (depth === m) return { verdict: 'ok', configs: cache.size, witness: null };
          state = after;
          openPuts = puts;
          openDeletes = deletes;
          lift(entry);
          entry = next[0];
          combined = false;
          firstReturn = NaN;
          continue;
        }
        bits[word] = bits[word] & ~bit;
        hash = (hash ^ (opKeys[op] as number)) >>> 0;
      }
      entry = next[entry] as number;
      continue;
    }

    // A return entry whose op is not linearized: the op's deadline has come.
    if (!combined) {
      combined = true;
      firstReturn = entryTime[entry] as number;
      entry = next[0];
      continue;
    }
    // Every move from this configuration was tried.
    if (depth > bestDepth) {
      bestDepth = depth;
      bestFailed = entryOp[entry] as number;
      bestFrames = depth;
      bestStack = stackEntry.slice(0, depth);
      bestMoves = stackMove.slice(0, depth);
    }
    if (depth === 0) break;
    depth--;
    cache.finish(stackConfig[depth] as number);
    state = stackState[depth] as number;
    entry = stackEntry[depth] as number;
    const move = stackMove[depth] as number;
    if (move === WITH_OPEN_PUT) openPuts--;
    else if (move === WITH_OPEN_DELETE) openDeletes--;
    const op = entryOp[entry] as number;
    bits[op >>> 5] = (bits[op >>> 5] as number) & ~(1 << (op & 31));
    hash = (hash ^ (opKeys[op] as number)) >>> 0;
    unlift(entry);
    entry = next[entry] as number;
    // Resume the parent's walk where it was; its first return entry is no longer cached.
    combined = move !== PLAIN;
    firstReturn = NaN;
  }

  // Rebuild the longest prefix, open ops included, and replay it on real values: the search only
  // knew abstract states.
  const prefix: number[] = [];
  let usedPuts = 0;
  let usedDeletes = 0;
  for (let i = 0; i < bestFrames; i++) {
    const move = bestMoves[i] as number;
    if (move === WITH_OPEN_PUT) prefix.push(openPutOps[usedPuts++] as number);
    else if (move === WITH_OPEN_DELETE) prefix.push(openDeleteOps[usedDeletes++] as number);
    prefix.push(entryOp[bestStack[i] as number] as number);
  }
  const linearization: WitnessStep[] = [];
  let value: string | null = null;
  for (const i of prefix) {
    const op = ops[i] as KeyOp;
    if (op.f === 'put') value = op.value;
    else if (op.f === 'delete') value = null;
    linearization.push({ id: op.id, state: value });
  }
  const failed = ops[bestFailed] as KeyOp;
  return {
    verdict: 'violation',
    configs: cache.size,
    witness: {
      key,
      kind: 'no-linearization',
      reason: explain(failed, value, linearization.length),
      linearization,
      failedOp: failed.id,
      writer: null,
      window: concurrentWindow(ops, failed),
    },
  };

  // Dancing-links removal of a call entry and its return; unlift undoes it exactly when calls are
  // undone in reverse order, which the stack guarantees.
  function lift(call: number): void {
    const ret = match[call] as number;
    unlink(call);
    unlink(ret);
  }
  function unlift(call: number): void {
    const ret = match[call] as number;
    relink(ret);
    relink(call);
  }
  function unlink(e: number): void {
    const p = prev[e] as number;
    const q = next[e] as number;
    next[p] = q;
    if (q !== -1) prev[q] = p;
  }
  function relink(e: number): void {
    const p = prev[e] as number;
    const q = next[e] as number;
    next[p] = e;
    if (q !== -1) prev[q] = e;
  }
}

function explain(failed: KeyOp, stateAfterPrefix: string | null, prefixLength: number): string {
  const shown = stateAfterPrefix === null ? 'absent' : JSON.stringify(stateAfterPrefix);
  const what =
    failed.f === 'get'
      ? `get #${String(failed.id)} returned ${failed.value === null ? 'absent' : JSON.stringify(failed.value)}`
      : failed.f === 'delete'
        ? `delete #${String(failed.id)} reported existed=${String(failed.existed)}`
        : `put #${String(failed.id)}`;
  return (
    `${what}, but no order of the ops concurrent with it makes that legal; the longest partial ` +
    `linearization has ${String(prefixLength)} ops and leaves the key ${shown}`
  );
}
