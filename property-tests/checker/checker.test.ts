import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OpKind, OpStatus, Operation } from './history.js';
import {
  checkHistory,
  formatWitness,
  fromEvents,
  parseJsonLines,
  toEvents,
  toJsonLines,
  type CheckResult,
} from './index.js';
import { ConfigCache } from './config-cache.js';
import { normalizeKey, partitionByKey } from './normalize.js';
import { searchKey } from './search.js';

// ---------------------------------------------------------------------------------------------
// Builders for hand-written fixtures. Ids are assigned in argument order.

type Draft = Omit<Operation, 'id'>;

function history(...drafts: Draft[]): Operation[] {
  return drafts.map((draft, id) => ({ id, ...draft }));
}

function put(
  process: number,
  value: string,
  call: number,
  ret: number,
  status: OpStatus = 'ok',
  key = 'k',
): Draft {
  return { process, f: 'put', key, value, existed: null, call, ret, status };
}

function get(
  process: number,
  value: string | null,
  call: number,
  ret: number,
  status: OpStatus = 'ok',
  key = 'k',
): Draft {
  return {
    process,
    f: 'get',
    key,
    value: status === 'ok' ? value : null,
    existed: null,
    call,
    ret,
    status,
  };
}

function del(
  process: number,
  existed: boolean | null,
  call: number,
  ret: number,
  status: OpStatus = 'ok',
  key = 'k',
): Draft {
  return {
    process,
    f: 'delete',
    key,
    value: null,
    existed: status === 'ok' ? existed : null,
    call,
    ret,
    status,
  };
}

function check(ops: readonly Operation[]): CheckResult {
  return checkHistory(ops, { budgetMsPerKey: 10_000 });
}

/**
 * The search's own verdict per key, without the pre-checks, so that violations a pre-check would
 * catch first still prove the search can find them.
 */
function searchVerdicts(ops: readonly Operation[]): string {
  const verdicts: string[] = [];
  for (const [key, keyOps] of partitionByKey(ops)) {
    const deadline = performance.now() + 10_000;
    verdicts.push(
      searchKey(key, normalizeKey(keyOps), { now: () => performance.now(), deadline }).verdict,
    );
  }
  return verdicts.length === 0 ? 'ok' : verdicts.join(',');
}

function verdictOf(ops: readonly Operation[]): string {
  const result = check(ops);
  return result.keys.length === 0 ? 'ok' : result.keys.map((k) => k.verdict).join(',');
}

// ---------------------------------------------------------------------------------------------
// A linearizable-by-construction generator: every op gets a linearization point (LP) inside its
// interval, and outputs are computed by replaying the LPs in order. Info ops take effect at a
// random point after their call (possibly after the client gave up) or never; fail ops never do.

type Random = () => number;

/** mulberry32: small, fast and good enough to drive a test generator. */
function random(seed: number): Random {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function int(rng: Random, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1));
}

interface Shape {
  processes: number;
  keys: number;
  ops: number;
  infoRate: number;
  failRate: number;
  maxDuration: number;
}

function generateLinearizable(seed: number, shape: Shape): Operation[] {
  const rng = random(seed);
  const slots = Array.from({ length: shape.processes }, (_, i) => ({
    process: i,
    time: int(rng, 0, 5),
  }));
  let nextProcess = shape.processes;
  let nextValue = 0;
  const ops: Operation[] = [];
  const effects: { op: Operation; lp: number; tie: number }[] = [];
  for (let id = 0; id < shape.ops; id++) {
    // The slot that is free earliest issues next, so all processes stay busy and overlap.
    let slot = slots[0] as (typeof slots)[number];
    for (const s of slots) if (s.time < slot.time) slot = s;
    const call = slot.time;
    const ret = call + int(rng, 0, shape.maxDuration);
    const roll = rng();
    const f: OpKind = roll < 0.4 ? 'put' : roll < 0.85 ? 'get' : 'delete';
    const key = `k${String(int(rng, 0, shape.keys - 1))}`;
    const statusRoll = rng();
    const status: OpStatus =
      statusRoll < shape.infoRate
        ? 'info'
        : statusRoll < shape.infoRate + shape.failRate
          ? 'fail'
          : 'ok';
    const op: Operation = {
      id,
      process: slot.process,
      f,
      key,
      value: f === 'put' ? `${key}:${String(nextValue++)}` : null,
      existed: null,
      call,
      ret,
      status,
    };
    ops.push(op);
    if (status === 'ok') effects.push({ op, lp: int(rng, call, ret), tie: rng() });
    else if (status === 'info' && rng() < 0.5)
      effects.push({ op, lp: int(rng, call, ret + 50), tie: rng() });
    // Back-to-back ops of one process may share a timestamp: closed intervals make them concurrent.
    slot.time = ret + int(rng, 0, 3);
    // A process that saw info never issues another op; its slot continues as a fresh process.
    if (status === 'info') slot.process = nextProcess++;
  }
  effects.sort((a, b) => a.lp - b.lp || a.tie - b.tie);
  const state = new Map<string, string | null>();
  for (const { op } of effects) {
    const current = state.get(op.key) ?? null;
    if (op.f === 'put') state.set(op.key, op.value);
    else if (op.f === 'delete') {
      if (op.status === 'ok') op.existed = current !== null;
      state.set(op.key, null);
    } else if (op.status === 'ok') op.value = current;
  }
  return ops;
}

/**
 * Makes one ok get definitely stale: it returns the value of an ok put p although another ok put q
 * started after p returned and returned before the get was invoked. Every linearization orders
 * p < q < get, q wrote a different value, and put values are unique, so nothing can restore p's
 * value before the get. Returns null when the history has no such triple.
 */
function injectStaleRead(
  ops: readonly Operation[],
  seed: number,
): { ops: Operation[]; get: Operation } | null {
  const rng = random(seed ^ 0x5a5a5a5a);
  const gets = ops.filter((op) => op.f === 'get' && op.status === 'ok');
  const okPuts = ops.filter((op) => op.f === 'put' && op.status === 'ok');
  const start = int(rng, 0, Math.max(0, gets.length - 1));
  for (let i = 0; i < gets.length; i++) {
    const g = gets[(start + i) % gets.length] as Operation;
    for (const q of okPuts) {
      if (q.key !== g.key || !(q.ret < g.call)) continue;
      const p = okPuts.find((c) => c.key === g.key && c.ret < q.call && c.value !== g.value);
      if (p === undefined) continue;
      const stale = { ...g, value: p.value };
      return { ops: ops.map((op) => (op.id === g.id ? stale : op)), get: stale };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// A brute-force reference: search every order of every subset of the non-failed ops that contains
// all ok ops and respects real time. This is the definition of linearizability, with none of the
// checker's normalization, partitioning, pre-checks or search reductions. The only shortcut is a
// memo of dead (placed set, register contents) pairs: what can still follow depends on nothing else.

function bruteForceLinearizable(ops: readonly Operation[]): boolean {
  const live = ops.filter((op) => op.status !== 'fail');
  const retOf = (op: Operation): number => (op.status === 'info' ? Infinity : op.ret);
  const placed = live.map(() => false);
  const state = new Map<string, string | null>();
  const dead = new Set<string>();
  const search = (okLeft: number): boolean => {
    if (okLeft === 0) return true;
    const memoKey = JSON.stringify([placed, [...state].sort()]);
    if (dead.has(memoKey)) return false;
    for (let i = 0; i < live.length; i++) {
      if (placed[i] === true) continue;
      const op = live[i] as Operation;
      // op may go next only if no unplaced op must precede it in real time (closed intervals).
      if (live.some((other, j) => placed[j] === false && j !== i && retOf(other) < op.call)) {
        continue;
      }
      const current = state.get(op.key) ?? null;
      let after = current;
      if (op.f === 'put') after = op.value;
      else if (op.f === 'get') {
        if (op.status === 'ok' && op.value !== current) continue;
      } else {
        if (op.status === 'ok' && op.existed !== (current !== null)) continue;
        after = null;
      }
      placed[i] = true;
      state.set(op.key, after);
      if (search(okLeft - (op.status === 'ok' ? 1 : 0))) return true;
      placed[i] = false;
      state.set(op.key, current);
    }
    dead.add(memoKey);
    return false;
  };
  return search(live.filter((op) => op.status === 'ok').length);
}

/** Random small histories: random intervals, statuses and outputs, mostly not linearizable. */
function smallOpArb(
  keys: readonly string[],
  statuses: readonly OpStatus[],
  kinds: readonly OpKind[],
) {
  return fc.record({
    key: fc.constantFrom(...keys),
    f: fc.constantFrom(...kinds),
    call: fc.integer({ min: 0, max: 10 }),
    length: fc.integer({ min: 0, max: 6 }),
    status: fc.constantFrom(...statuses),
    read: fc.integer({ min: 0, max: 7 }),
    existed: fc.boolean(),
  });
}

type SmallDraft = ReturnType<typeof smallOpArb> extends fc.Arbitrary<infer T> ? T : never;

function smallHistory(drafts: readonly SmallDraft[]): Operation[] {
  const putValues = (key: string): string[] =>
    drafts.flatMap((d, i) => (d.f === 'put' && d.key === key ? [`${key}${String(i)}`] : []));
  return drafts.map((d, id) => {
    let value: string | null = null;
    if (d.f === 'put') value = `${d.key}${String(id)}`;
    else if (d.f === 'get' && d.status === 'ok') {
      // Reads return absent, any value written on the key (whatever that put's fate) or garbage.
      const choices = [null, ...putValues(d.key)];
      value = d.read === 7 ? 'garbage' : (choices[d.read % choices.length] ?? null);
    }
    return {
      id,
      process: id,
      f: d.f,
      key: d.key,
      value,
      existed: d.f === 'delete' && d.status === 'ok' ? d.existed : null,
      call: d.call,
      ret: d.call + d.length,
      status: d.status,
    };
  });
}

// ---------------------------------------------------------------------------------------------

describe('checkHistory: hand-written fixtures', () => {
  it('accepts a crashed write that a concurrent read observed (Knossos README)', () => {
    const ops = history(get(0, '3', 0, 30), put(1, '3', 10, 20, 'info'));
    expect(check(ops).ok).toBe(true);
  });

  it('accepts a crashed write observed long after the client gave up', () => {
    const ops = history(
      put(0, 'a', 0, 10),
      put(1, 'b', 20, 25, 'info'),
      get(2, 'a', 30, 40),
      get(3, 'b', 100, 110),
    );
    expect(check(ops).ok).toBe(true);
  });

  it('rejects a crashed write that was observed and then un-observed', () => {
    const ops = history(
      put(0, 'a', 0, 10),
      put(1, 'b', 20, 30, 'info'),
      get(2, 'b', 40, 50),
      get(3, 'a', 60, 70),
    );
    const result = check(ops);
    expect(result.ok).toBe(false);
    const witness = result.violations[0]?.witness;
    // The observation clamps the crashed put's ret to 50, so real time alone orders a < b < get.
    expect(witness?.kind).toBe('stale-read');
    expect(witness?.failedOp).toBe(3);
    expect(witness?.writer).toBe(0);
    expect(witness?.linearization).toEqual([
      { id: 0, state: 'a' },
      { id: 1, state: 'b' },
    ]);
    expect(searchVerdicts(ops)).toBe('violation');
  });

  it('accepts Porcupine README example 1', () => {
    // C0: |-------- put('100') --------|
    // C1:    |--- get() -> '100' ---|
    // C2:       |- get() -> absent -|
    const ops = history(put(0, '100', 0, 100), get(1, '100', 25, 75), get(2, null, 30, 60));
    expect(check(ops).ok).toBe(true);
  });

  it('rejects Porcupine README example 2', () => {
    // C0: |---------------- put('200') ----------------|
    // C1:   |- get() -> '200' -|
    // C2:                         |- get() -> absent -|
    const ops = history(put(0, '200', 0, 100), get(1, '200', 10, 30), get(2, null, 40, 90));
    const witness = check(ops).violations[0]?.witness;
    expect(witness?.kind).toBe('no-linearization');
    expect(witness?.failedOp).toBe(2);
    expect(witness?.linearization).toEqual([
      { id: 0, state: '200' },
      { id: 1, state: '200' },
    ]);
    expect(witness?.window).toEqual([0]);
  });

  it('treats equal timestamps as concurrent (closed intervals)', () => {
    // A read invoked at the instant a put returned may still precede it.
    expect(verdictOf(history(put(0, 'a', 0, 10), get(1, null, 10, 20)))).toBe('ok');
    expect(verdictOf(history(put(0, 'a', 0, 10), get(1, null, 11, 20)))).toBe('violation');
    // A read that returned at the instant the put was invoked may observe it.
    expect(verdictOf(history(get(0, 'a', 0, 10), put(1, 'a', 10, 20)))).toBe('ok');
    // Zero-length ops at the same instant are concurrent with each other.
    expect(verdictOf(history(get(0, 'a', 5, 5), put(1, 'a', 5, 5), get(2, null, 5, 5)))).toBe('ok');
    // A delete returning at the instant an info put is invoked may follow that put, so the put
    // must not be dropped as unobserved.
    expect(verdictOf(history(del(0, true, 0, 10), put(1, 'a', 10, 20, 'info')))).toBe('ok');
  });

  it('rejects a stale read after an acknowledged overwrite', () => {
    const ops = history(put(0, 'a', 0, 10), put(1, 'b', 20, 30), get(2, 'a', 40, 50));
    const result = check(ops);
    expect(result.ok).toBe(false);
    const witness = result.violations[0]?.witness;
    expect(witness?.kind).toBe('stale-read');
    expect(searchVerdicts(ops)).toBe('violation');
    expect(witness?.failedOp).toBe(2);
    expect(witness?.writer).toBe(0);
    expect(witness?.linearization).toEqual([
      { id: 0, state: 'a' },
      { id: 1, state: 'b' },
    ]);
  });

  it('rejects a read of absent after an acknowledged put (lost write)', () => {
    const ops = history(put(0, 'a', 0, 10), get(1, null, 20, 30));
    const witness = check(ops).violations[0]?.witness;
    expect(witness?.kind).toBe('stale-read');
    expect(witness?.linearization).toEqual([{ id: 0, state: 'a' }]);
    expect(searchVerdicts(ops)).toBe('violation');
    // A delete that may land between them explains the read, even an indeterminate one.
    expect(
      verdictOf(history(put(0, 'a', 0, 10), del(2, null, 5, 6, 'info'), get(1, null, 20, 30))),
    ).toBe('ok');
    expect(verdictOf(history(put(0, 'a', 0, 10), del(2, true, 25, 40), get(1, null, 20, 30)))).toBe(
      'ok',
    );
    // One that returned before the put was invoked does not.
    expect(verdictOf(history(del(2, false, 0, 5), put(0, 'a', 6, 10), get(1, null, 20, 30)))).toBe(
      'violation',
    );
  });

  it('checks delete and existed', () => {
    const valid = history(
      put(0, 'a', 0, 10),
      del(1, true, 20, 30),
      get(2, null, 40, 50),
      del(3, false, 60, 70),
    );
    expect(verdictOf(valid)).toBe('ok');
    // A delete concurrent with the first put may go first and find nothing.
    expect(verdictOf(history(put(0, 'a', 0, 10), del(1, false, 5, 15), get(2, 'a', 20, 30)))).toBe(
      'ok',
    );
    expect(verdictOf(history(del(0, true, 0, 10)))).toBe('violation');
    expect(verdictOf(history(put(0, 'a', 0, 10), del(1, false, 20, 30)))).toBe('violation');
    expect(verdictOf(history(put(0, 'a', 0, 10), del(1, true, 20, 30), get(2, 'a', 40, 50)))).toBe(
      'violation',
    );
  });

  it('lets an info delete take effect or not, but only once', () => {
    const base = [put(0, 'a', 0, 10), del(1, null, 20, 30, 'info')];
    expect(verdictOf(history(...base, get(2, null, 40, 50)))).toBe('ok');
    expect(verdictOf(history(...base, get(2, 'a', 40, 50)))).toBe('ok');
    expect(verdictOf(history(...base, get(2, null, 40, 50), get(3, 'a', 60, 70)))).toBe(
      'violation',
    );
  });

  it('keeps an unobserved info put when an existed=true delete may have seen it', () => {
    // Dropping the put would leave the delete finding an absent key: a false violation.
    expect(verdictOf(history(put(0, 'a', 0, 10, 'info'), del(1, true, 20, 30)))).toBe('ok');
    expect(verdictOf(history(put(0, 'a', 0, 10, 'info'), get(1, null, 20, 30)))).toBe('ok');
    expect(verdictOf(history(put(0, 'a', 20, 30, 'info'), del(1, true, 0, 10)))).toBe('violation');
  });

  it('ignores failed ops and info gets', () => {
    const ops = history(
      put(0, 'a', 0, 10, 'fail'),
      get(1, null, 20, 30),
      get(2, null, 0, 50, 'info'),
      del(3, null, 0, 5, 'fail'),
    );
    const result = check(ops);
    expect(result.ok).toBe(true);
    expect(result.opsChecked).toBe(1);
    expect(result.indeterminateOps).toBe(1);
  });

  it('reports a garbage read before searching (adapted Knossos rethink-fail-minimal)', () => {
    const ops = history(
      put(0, '0', 0, 10),
      get(1, '3', 20, 40),
      put(2, '4', 25, 50),
      get(3, '4', 60, 70),
    );
    const result = check(ops);
    const violation = result.violations[0];
    expect(violation?.witness?.kind).toBe('garbage-read');
    expect(violation?.witness?.failedOp).toBe(1);
    expect(violation?.witness?.window).toEqual([2]);
    expect(violation?.configs).toBe(0);
  });

  it('reports a read of a failed put as a garbage read', () => {
    const result = check(history(put(0, 'a', 0, 10, 'fail'), get(1, 'a', 20, 30)));
    expect(result.violations[0]?.witness?.kind).toBe('garbage-read');
    expect(result.violations[0]?.witness?.reason).toMatch(/failed/);
  });

  it('reports a read from the future', () => {
    const result = check(history(get(0, 'a', 0, 9), put(1, 'a', 10, 20)));
    const witness = result.violations[0]?.witness;
    expect(witness?.kind).toBe('read-from-future');
    expect(witness?.writer).toBe(1);
  });

  it('throws on a repeated put value and on malformed ops', () => {
    expect(() => check(history(put(0, 'a', 0, 10), put(1, 'a', 20, 30, 'fail')))).toThrow(
      /duplicate put value "a"/,
    );
    expect(() => check(history(put(0, 'a', 10, 5)))).toThrow(/ret 5 is before call 10/);
    expect(() => check(history({ ...del(0, true, 0, 10), existed: null }))).toThrow(/existed/);
    expect(() => checkHistory([], { budgetMsPerKey: -1 })).toThrow(/budgetMsPerKey/);
    // The same value on two different keys is fine.
    expect(check(history(put(0, 'a', 0, 10), put(1, 'a', 0, 10, 'ok', 'other'))).ok).toBe(true);
  });

  it('checks keys independently and reports only the broken one', () => {
    const ops = history(
      put(0, 'a', 0, 10, 'ok', 'x'),
      get(1, 'a', 20, 30, 'ok', 'x'),
      put(2, 'b', 0, 10, 'ok', 'y'),
      put(3, 'c', 20, 30, 'ok', 'y'),
      get(4, 'b', 40, 50, 'ok', 'y'),
    );
    const result = check(ops);
    expect(result.ok).toBe(false);
    expect(result.keys.map((k) => [k.key, k.verdict])).toEqual([
      ['x', 'ok'],
      ['y', 'violation'],
    ]);
    expect(result.violations.map((k) => k.key)).toEqual(['y']);
    expect(result.opsChecked).toBe(5);
  });

  it('formats a witness so the contradiction is readable', () => {
    const ops = history(put(0, '200', 0, 100), get(1, '200', 10, 30), get(2, null, 40, 90));
    const witness = check(ops).violations[0]?.witness;
    expect(witness).toBeDefined();
    if (witness === undefined || witness === null) return;
    expect(formatWitness(witness, ops)).toBe(
      [
        'key "k": no-linearization: get #2 returned absent, but no order of the ops concurrent with it ' +
          'makes that legal; the longest partial linearization has 2 ops and leaves the key "200"',
        'longest partial linearization (2 ops):',
        '  1. #0 p0 put "k" "200" [0..100] ok  => state "200"',
        '  2. #1 p1 get "k" -> "200" [10..30] ok  => state "200"',
        'cannot be linearized next:',
        '  #2 p2 get "k" -> absent [40..90] ok',
        'concurrent ops (1):',
        '  #0 p0 put "k" "200" [0..100] ok',
      ].join('\n'),
    );
  });

  it('formats a stale read with the writes that force it', () => {
    const ops = history(
      put(0, 'a', 0, 10),
      put(1, 'b', 20, 30),
      get(2, 'a', 40, 50),
      put(3, 'c', 45, 60),
    );
    const witness = check(ops).violations[0]?.witness;
    if (witness === undefined || witness === null) throw new Error('expected a violation');
    const text = formatWitness(witness, ops);
    expect(text).toContain(
      'key "k": stale-read: get #2 returned "a", but put #1 of "b" overwrote it',
    );
    expect(text).toContain(
      'forced order (real time):\n  1. #0 p0 put "k" "a" [0..10] ok  => state "a"',
    );
    expect(text).toContain('the put that wrote the value it read:\n  #0 p0 put');
    expect(text).toContain('concurrent ops (1):\n  #3 p3 put "k" "c" [45..60] ok');
  });
});

describe('checkHistory: generated histories', () => {
  it('accepts linearizable-by-construction histories and rejects them with one stale read injected', () => {
    let injected = 0;
    let runs = 0;
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        runs++;
        const rng = random(seed);
        const shape: Shape = {
          processes: int(rng, 2, 8),
          keys: int(rng, 1, 3),
          ops: int(rng, 30, 150),
          infoRate: 0.08,
          failRate: 0.05,
          maxDuration: 20,
        };
        const good = generateLinearizable(seed, shape);
        const goodResult = check(good);
        if (!goodResult.ok) {
          const w = goodResult.violations[0]?.witness;
          throw new Error(`false violation:\n${w ? formatWitness(w, good) : 'unknown verdict'}`);
        }
        const bad = injectStaleRead(good, seed);
        if (bad === null) return;
        injected++;
        const badResult = check(bad.ops);
        expect(badResult.ok).toBe(false);
        const broken = badResult.keys.filter((k) => k.verdict !== 'ok');
        expect(broken.map((k) => [k.key, k.verdict])).toEqual([[bad.get.key, 'violation']]);
        expect(broken[0]?.witness?.kind).toBe('stale-read');
        // The search must refute it on its own too.
        const keyOps = bad.ops.filter((op) => op.key === bad.get.key);
        expect(searchVerdicts(keyOps)).toBe('violation');
      }),
      { numRuns: 300 },
    );
    expect(injected).toBeGreaterThanOrEqual(runs * 0.9);
  });

  it('checks 8 clients × 1000 ops on one key quickly, good and bad', () => {
    // Good histories stay cheap even with many info ops. Refuting one costs the search more the
    // more info ops are open when the violation happens, since every way of using them must be
    // ruled out; the stale-read pre-check catches this shape at once, so time the search alone.
    const shape: Shape = {
      processes: 8,
      keys: 1,
      ops: 1000,
      infoRate: 0.05,
      failRate: 0.02,
      maxDuration: 20,
    };
    for (const seed of [1, 2, 3]) {
      const good = check(generateLinearizable(seed, shape));
      expect(good.ok).toBe(true);
      const bad = injectStaleRead(generateLinearizable(seed, { ...shape, infoRate: 0.02 }), seed);
      expect(bad).not.toBeNull();
      if (bad === null) return;
      expect(check(bad.ops).violations[0]?.witness?.kind).toBe('stale-read');
      const started = performance.now();
      expect(searchVerdicts(bad.ops)).toBe('violation');
      const searchMs = performance.now() - started;
      // Generous bounds so a busy CI box does not flake; typical figures are 5–50 ms.
      expect(good.keys[0]?.ms).toBeLessThan(1000);
      expect(searchMs).toBeLessThan(1000);
    }
  });

  /** Runs checkHistory against the brute force; both verdicts must be well represented. */
  function differential(drafts: fc.Arbitrary<SmallDraft[]>, numRuns: number): void {
    let linearizable = 0;
    fc.assert(
      fc.property(drafts, (list) => {
        const ops = smallHistory(list);
        const expected = bruteForceLinearizable(ops);
        if (expected) linearizable++;
        const result = check(ops);
        expect(result.unknown).toBe(0);
        expect(result.ok).toBe(expected);
      }),
      { numRuns },
    );
    // fast-check may shrink on failure, but then the assertion above has already thrown.
    expect(linearizable).toBeGreaterThan(numRuns * 0.2);
    expect(numRuns - linearizable).toBeGreaterThan(numRuns * 0.2);
  }

  it('agrees with a brute-force permutation checker on small histories', () => {
    const op = smallOpArb(['a', 'b'], ['ok', 'ok', 'ok', 'fail', 'info'], ['get', 'put', 'delete']);
    differential(fc.array(op, { minLength: 1, maxLength: 7 }), 1000);
  });

  it('agrees with the brute force on one key with many info ops and deletes', () => {
    // Several open puts and deletes at once exercise the search's handling of open ops.
    const op = smallOpArb(
      ['a'],
      ['ok', 'ok', 'info', 'info', 'fail'],
      ['get', 'put', 'put', 'delete', 'delete'],
    );
    differential(fc.array(op, { minLength: 4, maxLength: 10 }), 1000);
  });
});

describe('checkHistory: budget', () => {
  // Twelve concurrent puts, then reads that pin two different "last" puts: the search has to try
  // every subset of the puts (about 2^12 × 3 configurations) before it can say violation.
  const expensive = history(
    ...Array.from({ length: 12 }, (_, i) => put(i, `v${String(i)}`, 0, 100)),
    get(20, 'v1', 150, 160),
    get(21, 'v2', 200, 300),
  );

  it('gives unknown, which fails the check, when the budget runs out', () => {
    let clock = 0;
    // Each reading of this clock advances it by a second, so the first budget check overruns.
    const now = (): number => (clock += 1000);
    const result = checkHistory(expensive, { budgetMsPerKey: 50, now });
    expect(result.ok).toBe(false);
    expect(result.unknown).toBe(1);
    expect(result.violations).toHaveLength(0);
    expect(result.keys[0]?.verdict).toBe('unknown');
    expect(result.keys[0]?.witness).toBeNull();
  });

  it('decides the same history given enough budget', () => {
    const result = check(expensive);
    expect(result.keys[0]?.verdict).toBe('violation');
    expect(result.keys[0]?.configs).toBeGreaterThan(4096);
  });
});

describe('ConfigCache', () => {
  it('confirms hits exactly, so a hash collision never prunes', () => {
    const cache = new ConfigCache(2);
    const a = Uint32Array.of(1, 0);
    const b = Uint32Array.of(2, 0);
    expect(cache.visit(7, a, 0, 0, 0)).toBe(0);
    expect(cache.visit(7, b, 0, 0, 0)).toBe(1); // same hash, other bitset
    expect(cache.visit(7, a, 1, 0, 0)).toBe(2); // same hash and bitset, other state
    expect(cache.visit(7, a, 0, 0, 0)).toBe(-1);
    expect(cache.size).toBe(3);
  });

  it('prunes a configuration dominated by a finished one, and only then', () => {
    const cache = new ConfigCache(1);
    const bits = Uint32Array.of(5);
    const index = cache.visit(9, bits, 3, 1, 1);
    expect(cache.visit(9, bits, 3, 2, 1)).toBeGreaterThan(index); // not finished yet
    cache.finish(index);
    expect(cache.visit(9, bits, 3, 1, 2)).toBe(-1); // more open ops used: dominated
    expect(cache.visit(9, bits, 3, 0, 1)).toBeGreaterThan(index); // fewer used: must be explored
    expect(cache.visit(9, bits, 4, 1, 2)).toBeGreaterThan(index); // other state
  });

  it('keeps working as it grows', () => {
    const cache = new ConfigCache(1);
    for (let i = 0; i < 5000; i++) expect(cache.visit(i & 15, Uint32Array.of(i), 0, 0, 0)).toBe(i);
    for (let i = 0; i < 5000; i++) expect(cache.visit(i & 15, Uint32Array.of(i), 0, 0, 0)).toBe(-1);
  });
});

describe('history format', () => {
  /** Ids are renumbered by invocation order on the way back, so compare without them. */
  const canonical = (ops: readonly Operation[]): string[] =>
    ops.map(({ id: _id, ...rest }) => JSON.stringify(rest)).sort();

  it('round-trips generated histories through JSON lines', () => {
    for (const seed of [11, 12, 13, 14, 15]) {
      const ops = generateLinearizable(seed, {
        processes: 5,
        keys: 2,
        ops: 200,
        infoRate: 0.1,
        failRate: 0.1,
        maxDuration: 4,
      });
      const text = toJsonLines(ops);
      expect(text.split('\n')).toHaveLength(2 * ops.length + 1);
      const back = parseJsonLines(text);
      expect(canonical(back)).toEqual(canonical(ops));
      expect(back.map((op) => op.id)).toEqual(ops.map((_, i) => i));
      expect(fromEvents(toEvents(ops))).toEqual(back);
      expect(check(back).ok).toBe(true);
    }
  });

  it('puts invocations before completions at equal times, but keeps each process in order', () => {
    const ops = history(
      put(0, 'a', 0, 10),
      get(1, 'a', 10, 20),
      del(0, true, 10, 10),
      get(0, null, 10, 30),
    );
    const lines = toEvents(ops).map(
      (e) => `${String(e.time)} p${String(e.process)} ${e.type} ${e.f}`,
    );
    expect(lines).toEqual([
      '0 p0 invoke put',
      '10 p1 invoke get',
      '10 p0 ok put',
      '10 p0 invoke delete',
      '10 p0 ok delete',
      '10 p0 invoke get',
      '20 p1 ok get',
      '30 p0 ok get',
    ]);
    expect(canonical(parseJsonLines(toJsonLines(ops)))).toEqual(canonical(ops));
  });

  it('writes the documented fields in the documented order', () => {
    const text = toJsonLines(history(del(3, true, 5, 9)));
    expect(text).toBe(
      '{"process":3,"type":"invoke","f":"delete","key":"k","value":null,"time":5}\n' +
        '{"process":3,"type":"ok","f":"delete","key":"k","value":null,"time":9,"existed":true}\n',
    );
  });

  it('parses and checks the example in docs/history-format.md', () => {
    const doc = readFileSync(new URL('../../docs/history-format.md', import.meta.url), 'utf8');
    const example = /## Example\n[\s\S]*?```jsonl\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const ops = parseJsonLines(example ?? '');
    expect(ops).toHaveLength(3);
    expect(checkHistory(ops, { budgetMsPerKey: 1000 }).ok).toBe(true);
  });

  it('turns an invocation without completion into an info op ending at the last time', () => {
    const ops = parseJsonLines(
      '{"process":0,"type":"invoke","f":"put","key":"k","value":"a","time":1}\n' +
        '{"process":1,"type":"invoke","f":"get","key":"k","value":null,"time":2}\n' +
        '{"process":1,"type":"ok","f":"get","key":"k","value":"a","time":7}\n',
    );
    expect(ops[0]).toEqual({
      id: 0,
      process: 0,
      f: 'put',
      key: 'k',
      value: 'a',
      existed: null,
      call: 1,
      ret: 7,
      status: 'info',
    });
    expect(check(ops).ok).toBe(true);
  });

  it('rejects bad input with the line number', () => {
    const invokePut = '{"process":0,"type":"invoke","f":"put","key":"k","value":"a","time":1}';
    const okPut = '{"process":0,"type":"ok","f":"put","key":"k","value":"a","time":2}';
    const cases: [string, RegExp][] = [
      [`${invokePut}\n{"process":0,`, /^line 2: not valid JSON/],
      [`\n[1,2]`, /^line 2: an event must be a JSON object/],
      [`${invokePut.replace('"time":1', '"time":1,"extra":1')}`, /^line 1: unknown field "extra"/],
      [
        invokePut.replace('"process":0', '"process":-1'),
        /^line 1: "process" must be a non-negative integer/,
      ],
      [invokePut.replace('"time":1', '"time":1.5'), /^line 1: "time" must be an integer/],
      [invokePut.replace('"invoke"', '"done"'), /^line 1: "type" must be/],
      [invokePut.replace('"put"', '"cas"'), /^line 1: "f" must be/],
      [invokePut.replace('"value":"a",', ''), /^line 1: "value" must be a string or null/],
      [
        invokePut.replace('"value":"a"', '"value":null'),
        /^line 1: a put event must carry the written value/,
      ],
      [
        '{"process":0,"type":"invoke","f":"get","key":"k","value":"a","time":1}',
        /^line 1: "value" must be null on a get invoke event/,
      ],
      [
        '{"process":0,"type":"invoke","f":"delete","key":"k","value":null,"time":1}\n' +
          '{"process":0,"type":"ok","f":"delete","key":"k","value":null,"time":2}',
        /^line 2: a delete ok event must carry "existed"/,
      ],
      [
        invokePut.replace('"time":1', '"time":1,"existed":true'),
        /^line 1: "existed" is only allowed/,
      ],
      [okPut, /^line 1: ok event for process 0, which has no open invoke/],
      [
        `${invokePut}\n${invokePut.replace('"a"', '"b"')}`,
        /^line 2: process 0 invokes a put while its put from line 1/,
      ],
      [
        `${invokePut.replace('"time":1', '"time":5')}\n${okPut}`,
        /^line 2: time 2 is before the previous event's 5/,
      ],
      [
        `${invokePut}\n${okPut.replace('"value":"a"', '"value":"b"')}`,
        /^line 2: this put completion/,
      ],
      [
        `${invokePut}\n${okPut}\n\n${invokePut.replace('"time":1', '"time":3')}`,
        /^line 4: put value "a" on key "k" was already written at line 1/,
      ],
    ];
    for (const [text, error] of cases) expect(() => parseJsonLines(text)).toThrow(error);
  });

  it('refuses to write histories the format cannot represent', () => {
    expect(() => toJsonLines(history(put(0, 'a', 0.5, 10)))).toThrow(/integer nanoseconds/);
    expect(() => toJsonLines(history(put(0, 'a', 0, 10), get(0, 'a', 5, 20)))).toThrow(
      /operations #0 and #1 of process 0 overlap/,
    );
  });
});
