import { describe, expect, it } from 'vitest';
import { DinomoError, isDinomoError } from '../../../src/errors/index.js';
import {
  DecisionLog,
  fillPolicyOptions,
  formatLine,
  initialPolicyState,
  mergedPercentile,
  parseDecisionJsonLines,
  policyStep,
  summarize,
  type ClientFeedback,
  type DecisionRecord,
  type KnPeriodStats,
  type PolicyInput,
  type PolicyOptions,
  type PolicyState,
  type ThreadPeriodStats,
} from '../../../src/monitor/index.js';

function thread(occupancy: number, extra: Partial<ThreadPeriodStats> = {}): ThreadPeriodStats {
  return {
    occupancy,
    accesses: 1000,
    valueHits: 600,
    shortcutHits: 100,
    logHits: 50,
    misses: 250,
    missCostRts: 2,
    avgHandlerLatencyUs: 20,
    ...extra,
  };
}

/** A KN whose threads have the given occupancies. */
function kn(knId: number, ...occupancies: number[]): KnPeriodStats {
  return { knId, threads: occupancies.map((o) => thread(o)) };
}

type HistogramFeedback = Extract<ClientFeedback, { buckets: unknown }>;

function histogram(clientId: string, buckets: Array<[number, number]>): HistogramFeedback {
  const ops = buckets.reduce((sum, [, count]) => sum + count, 0);
  return { clientId, ops, buckets: buckets.map(([latencyUs, count]) => ({ latencyUs, count })) };
}

/** A client whose every sample took `latencyUs`. */
function steady(clientId: string, latencyUs: number, samples = 100): ClientFeedback {
  return histogram(clientId, [[latencyUs, samples]]);
}

function stats(nowMs: number, kns: KnPeriodStats[], clients: ClientFeedback[]): PolicyInput {
  return { type: 'stats', nowMs, summary: summarize(kns, clients) };
}

function run(state: PolicyState, ...inputs: PolicyInput[]) {
  const decisions: DecisionRecord[] = [];
  for (const input of inputs) {
    const next = policyStep(state, input);
    state = next.state;
    decisions.push(...next.decisions);
  }
  return { state, decisions };
}

/** A policy started at t=0 whose grace period is already over, unless the options say otherwise. */
function started(options: PolicyOptions = {}): PolicyState {
  return initialPolicyState(0, { gracePeriodMs: 0, ...options });
}

const slow = [steady('c1', 21_000)];
const fast = [steady('c1', 12_000)];

describe('summarize', () => {
  it('averages occupancy over a KN’s threads and takes min, max and mean over KNs', () => {
    const s = summarize([kn(2, 0.5, 0.3), kn(1, 0.9, 0.7)], fast);
    expect(s.kns.map((k) => [k.knId, k.occupancy])).toEqual([
      [1, 0.8],
      [2, 0.4],
    ]);
    expect(s.knCount).toBe(2);
    expect(s.minOccupancy).toBeCloseTo(0.4);
    expect(s.minOccupancyKn).toBe(2);
    expect(s.maxOccupancy).toBeCloseTo(0.8);
    expect(s.avgOccupancy).toBeCloseTo(0.6);
    expect(s.hitRatio).toBeCloseTo(0.75);
    expect(s.missCostRts).toBe(2);
    expect(s.accesses).toBe(4000);
  });

  it('handles empty inputs: no KNs, no clients, zero latency', () => {
    const s = summarize([], []);
    expect(s).toMatchObject({
      knCount: 0,
      minOccupancyKn: null,
      clientCount: 0,
      p99LatencyUs: 0,
      meanLatencyUs: 0,
      hitRatio: 0,
    });
    const { decisions } = run(started(), { type: 'stats', nowMs: 10_000, summary: s });
    expect(decisions[0]).toMatchObject({ action: 'none', reason: 'no KN stats in this period' });
  });

  it('says "no client feedback" when no client reported, and still decides on occupancy', () => {
    const { decisions } = run(started(), stats(10_000, [kn(1, 0.5)], []));
    expect(decisions[0]?.action).toBe('none');
    expect(decisions[0]?.reason).toBe(
      'no client feedback, p99 0us <= SLO 16000us and min occupancy 0.50 >= 0.15',
    );
    expect(decisions[0]?.inputs.latencyUs).toBe(0);
  });
});

describe('policyStep: scale out', () => {
  it('adds a KN when the SLO is violated and every KN is busy', () => {
    const { state, decisions } = run(started(), stats(10_000, [kn(1, 0.42), kn(2, 0.6)], slow));
    expect(decisions).toHaveLength(1);
    const d = decisions[0] as DecisionRecord;
    expect(d.action).toBe('add');
    expect(d.knId).toBeUndefined();
    expect(d.reason).toBe('p99 21000us > SLO 16000us, min occupancy 0.42 (KN 1) > 0.20');
    expect(d.inputs).toMatchObject({
      knCount: 2,
      latencyUs: 21_000,
      latencyKind: 'p99',
      minOccupancy: 0.42,
      minOccupancyKn: 1,
      maxOccupancy: 0.6,
    });
    expect(formatLine(d)).toBe(
      't=10000ms add KN: p99 21000us > SLO 16000us, min occupancy 0.42 (KN 1) > 0.20',
    );
    expect(state.pendingAdds).toBe(1);
  });

  it('does not add when the least busy KN is at or below 0.20, and says so', () => {
    const { decisions } = run(started(), stats(10_000, [kn(1, 0.2), kn(2, 0.9)], slow));
    expect(decisions[0]?.action).toBe('none');
    expect(decisions[0]?.reason).toBe(
      'p99 21000us > SLO 16000us but min occupancy 0.20 (KN 1) <= 0.20',
    );
    // Just above the threshold: the texts get more digits so they do not read as equal.
    const close = run(started(), stats(10_000, [kn(1, 0.20004)], slow)).decisions[0];
    expect(close?.action).toBe('add');
    expect(close?.reason).toContain('min occupancy 0.20004 (KN 1) > 0.20000');
  });

  it('waits for the grace period, which every membership event restarts', () => {
    let state = initialPolicyState(0);
    const busy = [kn(1, 0.5)];
    let out = run(state, stats(10_000, busy, slow), stats(50_000, busy, slow));
    expect(out.decisions.map((d) => d.reason)).toEqual([
      'p99 21000us > SLO 16000us but grace period: 80000 ms left',
      'p99 21000us > SLO 16000us but grace period: 40000 ms left',
    ]);
    out = run(out.state, stats(90_000, busy, slow));
    expect(out.decisions[0]?.action).toBe('add');
    state = out.state;
    out = run(
      state,
      { type: 'kn-joined', nowMs: 100_000, knId: 2 },
      stats(110_000, [kn(1, 0.5), kn(2, 0.5)], slow),
    );
    expect(out.decisions[0]?.reason).toContain('grace period: 80000 ms left');
    out = run(
      out.state,
      { type: 'kn-failed', nowMs: 150_000, knId: 2 },
      stats(160_000, busy, slow),
    );
    expect(out.decisions[0]?.reason).toContain('grace period: 80000 ms left');
  });

  it('decides at most once per decision period', () => {
    const busy = [kn(1, 0.05), kn(2, 0.1)];
    const { decisions } = run(
      started({ decisionPeriodMs: 10_000 }),
      stats(5_000, busy, fast),
      stats(10_000, busy, fast),
      stats(15_000, busy, fast),
      stats(19_999, busy, fast),
      stats(20_000, busy, fast),
    );
    expect(decisions.map((d) => d.atMs)).toEqual([10_000, 20_000]);
  });

  it('respects maxKns', () => {
    const busy = [kn(1, 0.5), kn(2, 0.5)];
    const atMax = run(started({ maxKns: 2 }), stats(10_000, busy, slow)).decisions[0];
    expect(atMax).toMatchObject({ action: 'none' });
    expect(atMax?.reason).toBe('p99 21000us > SLO 16000us but at maxKns 2');
    // The original's six-node cap is gone: with maxKns 16, a seventh KN is added.
    const seven = [1, 2, 3, 4, 5, 6].map((id) => kn(id, 0.5));
    expect(run(started(), stats(10_000, seven, slow)).decisions[0]?.action).toBe('add');
  });

  it('blocks a second add until the first KN joins', () => {
    const busy = [kn(1, 0.5)];
    let out = run(started(), stats(10_000, busy, slow), stats(20_000, busy, slow));
    expect(out.decisions.map((d) => d.action)).toEqual(['add', 'none']);
    expect(out.decisions[1]?.reason).toBe(
      'p99 21000us > SLO 16000us but an add is pending (1 KN not yet joined)',
    );
    expect(out.state.pendingAdds).toBe(1);
    out = run(out.state, { type: 'kn-joined', nowMs: 25_000, knId: 2 });
    expect(out.state.pendingAdds).toBe(0);
    expect(out.state.graceStartMs).toBe(25_000);
    out = run(out.state, stats(30_000, [kn(1, 0.5), kn(2, 0.5)], slow));
    expect(out.decisions[0]?.action).toBe('add');
    // An add the cluster could not carry out is no longer pending either.
    out = run(out.state, { type: 'add-failed', nowMs: 31_000 });
    expect(out.state.pendingAdds).toBe(0);
  });

  it('does not add when elasticity is off', () => {
    const d = run(started({ elasticity: false }), stats(10_000, [kn(1, 0.5)], slow)).decisions[0];
    expect(d).toMatchObject({
      action: 'none',
      reason: 'p99 21000us > SLO 16000us but elasticity is off',
    });
  });
});

describe('policyStep: scale in', () => {
  it('removes the least busy KN and waits for its removal', () => {
    const idle = [kn(1, 0.1), kn(2, 0.05, 0.03), kn(3, 0.12)];
    let out = run(started(), stats(10_000, idle, fast));
    expect(out.decisions[0]).toMatchObject({
      action: 'remove',
      knId: 2,
      reason: 'p99 12000us <= SLO 16000us, min occupancy 0.04 (KN 2) < 0.15',
    });
    expect(formatLine(out.decisions[0] as DecisionRecord)).toMatch(/^t=10000ms remove KN 2: /);
    expect(out.state.pendingRemoval).toBe(2);
    out = run(out.state, stats(20_000, idle, fast));
    expect(out.decisions[0]?.reason).toBe('p99 12000us <= SLO 16000us; removal of KN 2 pending');
    // Another KN leaving does not settle the pending removal; KN 2 leaving does.
    out = run(out.state, { type: 'kn-removed', nowMs: 21_000, knId: 3 });
    expect(out.state.pendingRemoval).toBe(2);
    out = run(out.state, { type: 'kn-removed', nowMs: 22_000, knId: 2 });
    expect(out.state.pendingRemoval).toBeNull();
    expect(out.state.graceStartMs).toBe(22_000);
  });

  it('respects minKns and the occupancy threshold', () => {
    const idle = [kn(1, 0.05), kn(2, 0.1)];
    const atMin = run(started({ minKns: 2 }), stats(10_000, idle, fast)).decisions[0];
    expect(atMin?.reason).toBe(
      'p99 12000us <= SLO 16000us, min occupancy 0.05 (KN 1) < 0.15 but at minKns 2',
    );
    const ok = run(started({ minKns: 1 }), stats(10_000, idle, fast)).decisions[0];
    expect(ok).toMatchObject({ action: 'remove', knId: 1 });
    const steadyState = run(started(), stats(10_000, [kn(1, 0.31), kn(2, 0.5)], fast));
    expect(steadyState.decisions[0]).toMatchObject({
      action: 'none',
      reason: 'p99 12000us <= SLO 16000us and min occupancy 0.31 >= 0.15',
    });
  });

  it('waits for the grace period before removing', () => {
    const d = run(initialPolicyState(0), stats(50_000, [kn(1, 0.05), kn(2, 0.05)], fast))
      .decisions[0];
    expect(d?.action).toBe('none');
    expect(d?.reason).toContain('but grace period: 40000 ms left');
  });

  it('never scales in while the SLO is violated, even with an add pending', () => {
    const idle = [kn(1, 0.05), kn(2, 0.05)];
    const lowOccupancy = run(started(), stats(10_000, idle, slow)).decisions[0];
    expect(lowOccupancy?.action).toBe('none');
    expect(lowOccupancy?.reason).toBe(
      'p99 21000us > SLO 16000us but min occupancy 0.05 (KN 1) <= 0.20',
    );
    // The original also scaled in when an add was pending; here a violated SLO rules it out.
    const { decisions } = run(
      started(),
      stats(10_000, [kn(1, 0.5), kn(2, 0.5)], slow),
      stats(20_000, idle, slow),
    );
    expect(decisions.map((d) => d.action)).toEqual(['add', 'none']);
    expect(decisions[1]?.reason).toContain('an add is pending');
  });
});

describe('latency from merged histograms (original bug 24)', () => {
  it('sees a slow client that the mean of per-client p99s would hide', () => {
    // One heavy client with 2% slow requests, nine light clients that are always fast.
    const heavy = histogram('heavy', [
      [1_000, 980],
      [30_000, 20],
    ]);
    const light = Array.from({ length: 9 }, (_, i) => steady(`light${i}`, 1_000, 10));
    const perClientP99 = [30_000, ...light.map(() => 1_000)];
    const meanOfP99s = perClientP99.reduce((a, b) => a + b, 0) / perClientP99.length;
    expect(meanOfP99s).toBeLessThan(16_000);
    const s = summarize([kn(1, 0.5)], [heavy, ...light]);
    expect(s.p99LatencyUs).toBe(30_000);
    expect(s.latencyExact).toBe(true);
    expect(run(started(), { type: 'stats', nowMs: 10_000, summary: s }).decisions[0]).toMatchObject(
      { action: 'add' },
    );
  });

  it('is not raised by one unlucky request of an almost idle client', () => {
    const heavy = steady('heavy', 1_000, 1000);
    const idle = histogram('idle', [
      [1_000, 9],
      [50_000, 1],
    ]);
    // That client's own p99 is 50 ms, so the mean of per-client p99s is 25.5 ms > SLO.
    expect(mergedPercentile(idle.buckets, 0.99)).toBe(50_000);
    const s = summarize([kn(1, 0.5)], [heavy, idle]);
    expect(s.p99LatencyUs).toBe(1_000);
    expect(s.meanLatencyUs).toBeCloseTo((1_000 * 1009 + 50_000) / 1010);
    expect(run(started(), { type: 'stats', nowMs: 10_000, summary: s }).decisions[0]?.action).toBe(
      'none',
    );
  });

  it('uses an upper bound for clients that sent only percentiles, and the mean on request', () => {
    const s = summarize(
      [kn(1, 0.5)],
      [
        { clientId: 'a', ops: 100, p99Us: 17_000, meanUs: 5_000 },
        { clientId: 'b', ops: 300, p99Us: 9_000, meanUs: 1_000 },
        steady('c', 2_000, 100),
      ],
    );
    expect(s.latencyExact).toBe(false);
    expect(s.p99LatencyUs).toBe(17_000);
    expect(s.meanLatencyUs).toBe((5_000 * 100 + 1_000 * 300 + 2_000 * 100) / 500);
    const tail = run(started(), { type: 'stats', nowMs: 10_000, summary: s }).decisions[0];
    expect(tail?.reason).toMatch(/^p99 \(upper bound\) 17000us > SLO 16000us/);
    const mean = run(started({ useTailLatency: false }), {
      type: 'stats',
      nowMs: 10_000,
      summary: s,
    }).decisions[0];
    expect(mean?.inputs).toMatchObject({ latencyKind: 'mean', latencyUs: 2_000 });
    expect(mean?.reason).toMatch(/^mean 2000us <= SLO 16000us/);
  });

  it('computes nearest-rank percentiles over merged, unsorted, repeated buckets', () => {
    const buckets = [
      { latencyUs: 300, count: 1 },
      { latencyUs: 100, count: 50 },
      { latencyUs: 200, count: 48 },
      { latencyUs: 100, count: 0 },
      { latencyUs: 300, count: 1 },
    ];
    expect(mergedPercentile(buckets, 0.5)).toBe(100);
    expect(mergedPercentile(buckets, 0.98)).toBe(200);
    expect(mergedPercentile(buckets, 0.99)).toBe(300);
    expect(mergedPercentile([], 0.99)).toBe(0);
  });
});

/** The code of the DinomoError `fn` throws, or a description of what else happened. */
function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isDinomoError(err) ? err.code : 'not a DinomoError';
  }
  return 'no error';
}

describe('options validation', () => {
  const bad: Array<[string, unknown]> = [
    ['sloLatencyUs', 0],
    ['sloLatencyUs', Number.NaN],
    ['useTailLatency', 'yes'],
    ['scaleOutOccupancy', 1.5],
    ['scaleInOccupancy', -0.1],
    ['scaleInOccupancy', 0.3], // above the default scale-out threshold
    ['gracePeriodMs', -1],
    ['decisionPeriodMs', 0],
    ['decisionPeriodMs', 2.5],
    ['minKns', 0],
    ['maxKns', 0],
    ['elasticity', 1],
    ['bogus', 1],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name} = ${String(value)} with INVALID_OPTION`, () => {
      const options = { [name]: value } as PolicyOptions;
      expect(() => initialPolicyState(0, options)).toThrow(DinomoError);
      expect(errorCode(() => fillPolicyOptions(options))).toBe('INVALID_OPTION');
    });
  }

  it('rejects maxKns below minKns and accepts limits beyond the original’s 4 and 6', () => {
    expect(() => fillPolicyOptions({ minKns: 5, maxKns: 4 })).toThrow(/maxKns/);
    expect(errorCode(() => fillPolicyOptions({ minKns: 5, maxKns: 4 }))).toBe('INVALID_OPTION');
    expect(fillPolicyOptions({ minKns: 8, maxKns: 64 })).toMatchObject({ minKns: 8, maxKns: 64 });
    expect(fillPolicyOptions()).toMatchObject({
      sloLatencyUs: 16_000,
      useTailLatency: true,
      scaleOutOccupancy: 0.2,
      scaleInOccupancy: 0.15,
      gracePeriodMs: 90_000,
      decisionPeriodMs: 10_000,
      minKns: 1,
      maxKns: 16,
      elasticity: true,
    });
  });

  it('rejects malformed stats as an internal error', () => {
    expect(() => summarize([kn(1, Number.NaN)])).toThrow(DinomoError);
    expect(() => summarize([kn(1, 0.5), kn(1, 0.5)])).toThrow(/twice/);
    expect(() => summarize([], [steady('c', -1)])).toThrow(DinomoError);
  });
});

describe('DecisionLog', () => {
  function record(atMs: number, action: DecisionRecord['action'] = 'none'): DecisionRecord {
    const inputs = {
      knCount: 2,
      latencyUs: 12_000,
      latencyKind: 'p99' as const,
      minOccupancy: 0.31,
      minOccupancyKn: 1,
      maxOccupancy: 0.5,
      avgOccupancy: 0.405,
      hitRatio: 0.75,
      missCostRts: 2,
      accesses: 4000,
    };
    const base = { atMs, action, reason: `decision at ${atMs}`, inputs };
    return action === 'remove' ? { ...base, knId: 1 } : base;
  }

  it('keeps the newest records up to its capacity and counts evictions', () => {
    const log = new DecisionLog({ capacity: 3 });
    expect(log.entries()).toEqual([]);
    expect(log.toJsonLines()).toBe('');
    for (let t = 1; t <= 5; t++) log.append(record(t));
    expect(log.size).toBe(3);
    expect(log.evicted).toBe(2);
    expect(log.entries().map((r) => r.atMs)).toEqual([3, 4, 5]);
    expect(new DecisionLog().capacity).toBe(1000);
    expect(errorCode(() => new DecisionLog({ capacity: 0 }))).toBe('INVALID_OPTION');
  });

  it('round-trips through JSON lines', () => {
    const log = new DecisionLog({ capacity: 10 });
    const records = [record(10_000, 'add'), record(20_000), record(30_000, 'remove')];
    for (const r of records) log.append(r);
    const text = log.toJsonLines();
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(parseDecisionJsonLines(text)).toEqual(records);
    expect(() => parseDecisionJsonLines('{"atMs":1}\n')).toThrow(/line 1/);
    expect(formatLine(records[2] as DecisionRecord)).toBe(
      't=30000ms remove KN 1: decision at 30000',
    );
  });

  it('logs what the policy decides, none included', () => {
    const log = new DecisionLog();
    const { decisions } = run(
      started(),
      stats(10_000, [kn(1, 0.5)], slow),
      stats(20_000, [kn(1, 0.5)], slow),
    );
    for (const d of decisions) log.append(d);
    expect(log.entries().map(formatLine)).toEqual([
      't=10000ms add KN: p99 21000us > SLO 16000us, min occupancy 0.50 (KN 1) > 0.20',
      't=20000ms none: p99 21000us > SLO 16000us but an add is pending (1 KN not yet joined)',
    ]);
    expect(parseDecisionJsonLines(log.toJsonLines())).toEqual(decisions);
  });
});
