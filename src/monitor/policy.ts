import { rankCountMax } from '../config/index.js';
import { DinomoError } from '../errors/index.js';

/**
 * The M-node's SLO policy (scale out, scale in) as pure functions. `summarize` turns one period's
 * per-KN-thread counter deltas and client latency feedback into a `StatsSummary`; `policyStep` feeds
 * summaries and membership events into a small state machine and returns one `DecisionRecord` per
 * decision, including the decisions to do nothing, so that every choice the M-node made (or did not
 * make) can be explained afterwards from the decision log. The caller performs the decisions
 * (asks the cluster to add or remove a KN) and reports back with `kn-joined` / `kn-removed`.
 *
 * Differences from the original (reference section 6 and bug 24):
 * - the tail latency is the p99 of all clients' samples merged, not the mean of per-client values;
 * - the KN count limits are options (`minKns`, `maxKns`), not the literals 4 and 6;
 * - `required_memory_node`, computed from the repurposed miss-cost field, is gone;
 * - thresholds, periods and the SLO are validated options with the original's defaults.
 */

/** One KN thread's counters over one report period (deltas, except the gauges noted). */
export interface ThreadPeriodStats {
  /** Fraction of the period the thread spent handling requests, 0..1 (slightly above 1 is clamped). */
  occupancy: number;
  /** Requests handled in the period. */
  accesses: number;
  valueHits: number;
  shortcutHits: number;
  logHits: number;
  misses: number;
  /** The DAC's current miss cost in round trips per miss (a gauge, not a delta). */
  missCostRts: number;
  /** Mean handler time per request in microseconds over the period. */
  avgHandlerLatencyUs: number;
}

/** One KN's report for a period: one entry per KN thread. */
export interface KnPeriodStats {
  knId: number;
  threads: ReadonlyArray<ThreadPeriodStats>;
}

/** One bucket of a latency histogram: `count` samples whose latency is represented by `latencyUs`. */
export interface LatencyBucket {
  latencyUs: number;
  count: number;
}

/**
 * One client's feedback for a period. A client that can send its histogram should: only buckets
 * allow a true merged percentile. A client that only knows its own percentiles still counts, but
 * then the merged p99 becomes an upper bound (see `summarize`).
 */
export type ClientFeedback =
  | { clientId: string; ops: number; buckets: ReadonlyArray<LatencyBucket> }
  | { clientId: string; ops: number; p99Us: number; meanUs: number };

/** What the policy knows about one KN in a period. */
export interface KnSummary {
  knId: number;
  threads: number;
  /** Mean occupancy over the KN's threads. */
  occupancy: number;
  accesses: number;
  hits: number;
  misses: number;
  /** Miss cost averaged over threads, weighted by misses (plain mean if there were none). */
  missCostRts: number;
  /** Handler latency averaged over threads, weighted by accesses. */
  avgLatencyUs: number;
}

/** One period's statistics, as the policy consumes them. */
export interface StatsSummary {
  /** Sorted by KN id. */
  kns: ReadonlyArray<KnSummary>;
  knCount: number;
  minOccupancy: number;
  /** The KN with the lowest occupancy (lowest id on ties); null when no KN reported. */
  minOccupancyKn: number | null;
  maxOccupancy: number;
  avgOccupancy: number;
  /** (value + shortcut + log hits) / (hits + misses) over all threads; 0 without lookups. */
  hitRatio: number;
  missCostRts: number;
  accesses: number;
  /** Clients that reported at least one sample. 0 means "no client feedback": latencies are 0. */
  clientCount: number;
  clientOps: number;
  /** p99 over all clients' samples merged (an upper bound when `latencyExact` is false). */
  p99LatencyUs: number;
  /** Mean over all clients' samples. */
  meanLatencyUs: number;
  /** False when some client sent percentiles instead of a histogram. */
  latencyExact: boolean;
}

export interface PolicyOptions {
  /** The latency SLO in microseconds. Default 16000. */
  sloLatencyUs?: number;
  /** Compare the merged p99 (true) or the mean (false) with the SLO. Default true. */
  useTailLatency?: boolean;
  /** Scale out only if even the least busy KN is busier than this. Default 0.20. */
  scaleOutOccupancy?: number;
  /** Scale in only if the least busy KN is less busy than this. Default 0.15. */
  scaleInOccupancy?: number;
  /** No scaling within this long of the last membership change. Default 90000. */
  gracePeriodMs?: number;
  /** At most one decision per this period. Default 10000. */
  decisionPeriodMs?: number;
  /** Never scale in below this many KNs. Default 1. */
  minKns?: number;
  /** Never scale out above this many KNs. Default 16. */
  maxKns?: number;
  /** Scaling on or off; with it off every decision is 'none'. Default true. */
  elasticity?: boolean;
}

export type PolicyConfig = Readonly<Required<PolicyOptions>>;

export const defaultPolicyOptions: PolicyConfig = {
  sloLatencyUs: 16_000,
  useTailLatency: true,
  scaleOutOccupancy: 0.2,
  scaleInOccupancy: 0.15,
  gracePeriodMs: 90_000,
  decisionPeriodMs: 10_000,
  minKns: 1,
  maxKns: 16,
  elasticity: true,
};

export interface PolicyState {
  readonly config: PolicyConfig;
  /** Start of the grace period: the last membership change (or the M-node's start). */
  graceStartMs: number;
  /** KNs asked for and not yet joined. */
  pendingAdds: number;
  /** The KN asked to leave and not yet gone. */
  pendingRemoval: number | null;
  lastDecisionMs: number;
}

export type PolicyInput =
  | { type: 'stats'; nowMs: number; summary: StatsSummary }
  | { type: 'kn-joined'; nowMs: number; knId: number }
  | { type: 'kn-removed'; nowMs: number; knId: number }
  | { type: 'kn-failed'; nowMs: number; knId: number }
  /** The cluster could not start a KN the policy asked for: the add is no longer pending. */
  | { type: 'add-failed'; nowMs: number };

export type PolicyAction = 'add' | 'remove' | 'none';

/** The numbers a decision was taken on, copied into its record so the log explains itself. */
export interface DecisionInputs {
  knCount: number;
  latencyUs: number;
  latencyKind: 'p99' | 'mean';
  minOccupancy: number;
  minOccupancyKn: number | null;
  maxOccupancy: number;
  avgOccupancy: number;
  hitRatio: number;
  missCostRts: number;
  accesses: number;
}

export interface DecisionRecord {
  atMs: number;
  action: PolicyAction;
  /** The KN to remove (only for 'remove'; the id of an added KN is not known until it joins). */
  knId?: number;
  reason: string;
  inputs: DecisionInputs;
}

const optionNames = Object.keys(defaultPolicyOptions);

function invalid(name: string, expected: string, value: unknown): DinomoError {
  return new DinomoError(
    'INVALID_OPTION',
    `policy options.${name} must be ${expected}, got ${String(value)}`,
  );
}

function numberIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalid(name, `a number from ${min} to ${max}`, value);
  }
  return value;
}

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw invalid(name, 'a boolean', value);
  return value;
}

/** Validates policy options and fills defaults. Bad input throws INVALID_OPTION. */
export function fillPolicyOptions(options: PolicyOptions = {}): PolicyConfig {
  if (typeof options !== 'object' || options === null) {
    throw new DinomoError('INVALID_OPTION', 'policy options must be an object');
  }
  for (const name of Object.keys(options)) {
    if (!optionNames.includes(name)) {
      throw new DinomoError('INVALID_OPTION', `unknown policy option "${name}"`);
    }
  }
  // An option given as undefined (possible from JavaScript) means the default, as if left out.
  const pick = <K extends keyof PolicyOptions>(name: K): PolicyOptions[K] =>
    options[name] ?? defaultPolicyOptions[name];
  const scaleOutOccupancy = numberIn('scaleOutOccupancy', pick('scaleOutOccupancy'), 0, 1);
  // The scale-in threshold may not exceed the scale-out one: an occupancy between them would call
  // for both, and the cluster would flap between adding and removing a KN as the latency crosses
  // the SLO. The band between the two thresholds is where it stays put.
  const scaleInOccupancy = numberIn(
    'scaleInOccupancy',
    pick('scaleInOccupancy'),
    0,
    scaleOutOccupancy,
  );
  const minKns = integerIn('minKns', pick('minKns'), 1, rankCountMax);
  // Each KN has at least one thread and a region holds at most rankCountMax thread chains, so
  // this is the only hard upper bound; everything below it is the operator's choice.
  const maxKns = integerIn('maxKns', pick('maxKns'), minKns, rankCountMax);
  return {
    sloLatencyUs: numberIn('sloLatencyUs', pick('sloLatencyUs'), 1, 3_600_000_000),
    useTailLatency: boolean('useTailLatency', pick('useTailLatency')),
    scaleOutOccupancy,
    scaleInOccupancy,
    gracePeriodMs: integerIn('gracePeriodMs', pick('gracePeriodMs'), 0, Number.MAX_SAFE_INTEGER),
    decisionPeriodMs: integerIn(
      'decisionPeriodMs',
      pick('decisionPeriodMs'),
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    minKns,
    maxKns,
    elasticity: boolean('elasticity', pick('elasticity')),
  };
}

function badStats(what: string, value: unknown): DinomoError {
  // Stats come from our own KNs and clients, so a malformed one is a bug in the reporter.
  return new DinomoError(
    'INTERNAL',
    `monitor stats: ${what} must be a finite number >= 0, got ${String(value)}`,
  );
}

function count(what: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw badStats(what, value);
  return value;
}

/**
 * The q-quantile (0 < q <= 1) of merged histogram buckets by nearest rank: the smallest bucket
 * latency at or below which at least ceil(q x total) samples lie. Buckets may come from many
 * clients and repeat latencies. Returns 0 for no samples.
 */
export function mergedPercentile(buckets: Iterable<LatencyBucket>, q: number): number {
  if (!(q > 0 && q <= 1)) throw new DinomoError('INTERNAL', `percentile ${q} is not in (0, 1]`);
  const merged = new Map<number, number>();
  let total = 0;
  for (const b of buckets) {
    count('bucket latencyUs', b.latencyUs);
    count('bucket count', b.count);
    if (b.count === 0) continue;
    merged.set(b.latencyUs, (merged.get(b.latencyUs) ?? 0) + b.count);
    total += b.count;
  }
  if (total === 0) return 0;
  const rank = Math.ceil(q * total);
  let seen = 0;
  const latencies = [...merged.keys()].sort((a, b) => a - b);
  for (const latency of latencies) {
    seen += merged.get(latency) ?? 0;
    if (seen >= rank) return latency;
  }
  // Floating point in q x total can leave rank a hair above the total: the answer is the maximum.
  return latencies[latencies.length - 1] ?? 0;
}

/**
 * Turns one period's raw stats into the policy's summary. Per KN, occupancy is the mean over its
 * threads (a KN is as busy as its threads on average, as in the original). Across clients:
 * - clients that sent histograms are merged bucket by bucket and the p99 is read from the merged
 *   histogram. The original averaged per-client values (bug 24), which lets one slow client hide
 *   behind many idle ones, or one unlucky request of an idle client raise the "tail" of all;
 * - clients that sent only percentiles cannot be merged exactly. The largest p99 among them and the
 *   merged histogram's p99 is an upper bound of the true p99 (each group has at most 1% of its
 *   samples above it), so it is used and `latencyExact` is false: erring high risks an extra KN,
 *   erring low risks a missed SLO;
 * - the mean is weighted by samples (histogram counts, or ops for percentile-only clients).
 * Clients without samples are ignored; with none left, latencies are 0 and `clientCount` is 0.
 */
export function summarize(
  kns: ReadonlyArray<KnPeriodStats>,
  clients: ReadonlyArray<ClientFeedback> = [],
): StatsSummary {
  const knSummaries: KnSummary[] = [];
  const seen = new Set<number>();
  let hits = 0;
  let misses = 0;
  let accesses = 0;
  let missCostWeighted = 0;
  let missCostPlain = 0;
  let threadCount = 0;
  for (const kn of kns) {
    if (seen.has(kn.knId))
      throw new DinomoError('INTERNAL', `monitor stats: KN ${kn.knId} reported twice`);
    seen.add(kn.knId);
    if (kn.threads.length === 0) {
      throw new DinomoError('INTERNAL', `monitor stats: KN ${kn.knId} reported no threads`);
    }
    const k = {
      occupancy: 0,
      accesses: 0,
      hits: 0,
      misses: 0,
      costW: 0,
      costPlain: 0,
      latW: 0,
      lat: 0,
    };
    for (const t of kn.threads) {
      const where = `KN ${kn.knId}`;
      k.occupancy += Math.min(1, count(`${where} occupancy`, t.occupancy));
      const a = count(`${where} accesses`, t.accesses);
      const h =
        count(`${where} valueHits`, t.valueHits) +
        count(`${where} shortcutHits`, t.shortcutHits) +
        count(`${where} logHits`, t.logHits);
      const m = count(`${where} misses`, t.misses);
      const cost = count(`${where} missCostRts`, t.missCostRts);
      const lat = count(`${where} avgHandlerLatencyUs`, t.avgHandlerLatencyUs);
      k.accesses += a;
      k.hits += h;
      k.misses += m;
      k.costW += cost * m;
      k.costPlain += cost;
      k.latW += lat * a;
      k.lat += lat;
    }
    const n = kn.threads.length;
    knSummaries.push({
      knId: kn.knId,
      threads: n,
      occupancy: k.occupancy / n,
      accesses: k.accesses,
      hits: k.hits,
      misses: k.misses,
      missCostRts: k.misses > 0 ? k.costW / k.misses : k.costPlain / n,
      avgLatencyUs: k.accesses > 0 ? k.latW / k.accesses : k.lat / n,
    });
    hits += k.hits;
    misses += k.misses;
    accesses += k.accesses;
    missCostWeighted += k.costW;
    missCostPlain += k.costPlain;
    threadCount += n;
  }
  knSummaries.sort((a, b) => a.knId - b.knId);

  let minKn: KnSummary | null = null;
  let maxOccupancy = 0;
  let occupancySum = 0;
  for (const kn of knSummaries) {
    if (minKn === null || kn.occupancy < minKn.occupancy) minKn = kn;
    maxOccupancy = Math.max(maxOccupancy, kn.occupancy);
    occupancySum += kn.occupancy;
  }

  const buckets: LatencyBucket[] = [];
  let clientCount = 0;
  let clientOps = 0;
  let latencyExact = true;
  let boundP99 = 0;
  let latencySum = 0;
  let samples = 0;
  for (const c of clients) {
    const ops = count(`client ${c.clientId} ops`, c.ops);
    if ('buckets' in c) {
      let n = 0;
      for (const b of c.buckets) {
        const bucketCount = count(`client ${c.clientId} bucket count`, b.count);
        const latency = count(`client ${c.clientId} bucket latencyUs`, b.latencyUs);
        n += bucketCount;
        latencySum += latency * bucketCount;
        buckets.push(b);
      }
      if (n === 0) continue;
      samples += n;
    } else {
      const p99 = count(`client ${c.clientId} p99Us`, c.p99Us);
      const mean = count(`client ${c.clientId} meanUs`, c.meanUs);
      if (ops === 0) continue;
      latencyExact = false;
      boundP99 = Math.max(boundP99, p99);
      latencySum += mean * ops;
      samples += ops;
    }
    clientCount++;
    clientOps += ops;
  }

  return {
    kns: knSummaries,
    knCount: knSummaries.length,
    minOccupancy: minKn?.occupancy ?? 0,
    minOccupancyKn: minKn?.knId ?? null,
    maxOccupancy,
    avgOccupancy: knSummaries.length > 0 ? occupancySum / knSummaries.length : 0,
    hitRatio: hits + misses > 0 ? hits / (hits + misses) : 0,
    missCostRts:
      misses > 0 ? missCostWeighted / misses : threadCount > 0 ? missCostPlain / threadCount : 0,
    accesses,
    clientCount,
    clientOps,
    p99LatencyUs: Math.max(mergedPercentile(buckets, 0.99), boundP99),
    meanLatencyUs: samples > 0 ? latencySum / samples : 0,
    latencyExact,
  };
}

/**
 * The state at the M-node's start. The grace period starts now, as in the original: the cluster
 * just started, and its first statistics say little. The first decision comes one decision period
 * from now.
 */
export function initialPolicyState(nowMs: number, options?: PolicyOptions): PolicyState {
  return {
    config: fillPolicyOptions(options),
    graceStartMs: nowMs,
    pendingAdds: 0,
    pendingRemoval: null,
    lastDecisionMs: nowMs,
  };
}

/**
 * One step of the policy. Membership events restart the grace period (a fresh KN needs time to
 * warm its cache and take its slots before its occupancy means anything) and settle what was
 * pending. A stats input yields one decision record once a decision period has passed since the
 * last decision, and nothing otherwise; the caller should then start a new stats period.
 */
export function policyStep(
  state: PolicyState,
  input: PolicyInput,
): { state: PolicyState; decisions: DecisionRecord[] } {
  switch (input.type) {
    case 'kn-joined':
      return {
        state: {
          ...state,
          graceStartMs: input.nowMs,
          pendingAdds: Math.max(0, state.pendingAdds - 1),
        },
        decisions: [],
      };
    case 'kn-removed':
    case 'kn-failed':
      // A failed KN that was being removed is gone too: the removal is no longer pending. A KN that
      // fails while an add is pending does not settle the add; the replacement still has to join.
      return {
        state: {
          ...state,
          graceStartMs: input.nowMs,
          pendingRemoval: state.pendingRemoval === input.knId ? null : state.pendingRemoval,
        },
        decisions: [],
      };
    case 'add-failed':
      return {
        state: { ...state, pendingAdds: Math.max(0, state.pendingAdds - 1) },
        decisions: [],
      };
    case 'stats': {
      if (input.nowMs - state.lastDecisionMs < state.config.decisionPeriodMs) {
        return { state, decisions: [] };
      }
      const record = decide(state, input.summary, input.nowMs);
      const next: PolicyState = { ...state, lastDecisionMs: input.nowMs };
      if (record.action === 'add') next.pendingAdds = state.pendingAdds + 1;
      if (record.action === 'remove' && record.knId !== undefined)
        next.pendingRemoval = record.knId;
      return { state: next, decisions: [record] };
    }
  }
}

/**
 * Occupancies with two decimals, or more where two would print a value that differs from the
 * threshold as equal to it ("0.20 > 0.20" reads as a bug in the log).
 */
function occupancyTexts(value: number, threshold: number): [string, string] {
  for (let digits = 2; digits <= 6; digits++) {
    const texts: [string, string] = [value.toFixed(digits), threshold.toFixed(digits)];
    if (texts[0] !== texts[1] || value === threshold) return texts;
  }
  return [String(value), String(threshold)];
}

/**
 * The decision itself. The conditions are checked in the original's order and the reason names the
 * first one that failed, so a 'none' says exactly what stood in the way.
 */
function decide(state: PolicyState, s: StatsSummary, nowMs: number): DecisionRecord {
  const c = state.config;
  const latencyKind = c.useTailLatency ? 'p99' : 'mean';
  const latencyUs = c.useTailLatency ? s.p99LatencyUs : s.meanLatencyUs;
  const inputs: DecisionInputs = {
    knCount: s.knCount,
    latencyUs,
    latencyKind,
    minOccupancy: s.minOccupancy,
    minOccupancyKn: s.minOccupancyKn,
    maxOccupancy: s.maxOccupancy,
    avgOccupancy: s.avgOccupancy,
    hitRatio: s.hitRatio,
    missCostRts: s.missCostRts,
    accesses: s.accesses,
  };
  const none = (reason: string): DecisionRecord => ({
    atMs: nowMs,
    action: 'none',
    reason,
    inputs,
  });
  if (s.knCount === 0 || s.minOccupancyKn === null) return none('no KN stats in this period');

  const over = latencyUs > c.sloLatencyUs;
  const kindText =
    c.useTailLatency && !s.latencyExact ? `${latencyKind} (upper bound)` : latencyKind;
  const comparison = `${kindText} ${Math.round(latencyUs)}us ${over ? '>' : '<='} SLO ${c.sloLatencyUs}us`;
  const latencyText = s.clientCount === 0 ? `no client feedback, ${comparison}` : comparison;
  const graceLeftMs = state.graceStartMs + c.gracePeriodMs - nowMs;
  const graceText = `grace period: ${Math.ceil(graceLeftMs)} ms left`;
  const minKn = s.minOccupancyKn;

  if (over) {
    const [occ, threshold] = occupancyTexts(s.minOccupancy, c.scaleOutOccupancy);
    const occupancyText = `min occupancy ${occ} (KN ${minKn})`;
    if (state.pendingAdds > 0) {
      return none(`${latencyText} but an add is pending (${state.pendingAdds} KN not yet joined)`);
    }
    if (!c.elasticity) return none(`${latencyText} but elasticity is off`);
    // Scaling out helps only if the KNs are busy; a latency problem with idle KNs lies elsewhere
    // (the DPM, the network, a hot key), and another KN would only cost money.
    if (!(s.minOccupancy > c.scaleOutOccupancy)) {
      return none(`${latencyText} but ${occupancyText} <= ${threshold}`);
    }
    if (s.knCount >= c.maxKns) return none(`${latencyText} but at maxKns ${c.maxKns}`);
    if (graceLeftMs > 0) return none(`${latencyText} but ${graceText}`);
    return {
      atMs: nowMs,
      action: 'add',
      reason: `${latencyText}, ${occupancyText} > ${threshold}`,
      inputs,
    };
  }

  const [occ, threshold] = occupancyTexts(s.minOccupancy, c.scaleInOccupancy);
  if (!c.elasticity) return none(`${latencyText}; elasticity is off`);
  if (state.pendingRemoval !== null) {
    return none(`${latencyText}; removal of KN ${state.pendingRemoval} pending`);
  }
  if (!(s.minOccupancy < c.scaleInOccupancy)) {
    return none(`${latencyText} and min occupancy ${occ} >= ${threshold}`);
  }
  const low = `${latencyText}, min occupancy ${occ} (KN ${minKn}) < ${threshold}`;
  if (s.knCount <= c.minKns) return none(`${low} but at minKns ${c.minKns}`);
  if (graceLeftMs > 0) return none(`${low} but ${graceText}`);
  return { atMs: nowMs, action: 'remove', knId: minKn, reason: low, inputs };
}
