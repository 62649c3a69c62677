import { DinomoError } from '../errors/index.js';
import { shortcutChargeBytes, valueChargeBytes } from '../kn/dac-layout.js';
import type { HitRatio } from './report.js';
import { defaultKeyPrefix } from './zipf.js';
import { clusterModes, type ClusterMode } from '../config/options.js';

/**
 * A cost model that predicts throughput against the number of KNs for each engine mode, from the
 * per-operation costs of one real run and stated network parameters. This machine has 2 cores, so
 * real runs reach 1 or 2 KNs only; everything this module returns for other KN counts is a MODEL,
 * not a measurement, and every point says so in its `label`. `checkAgainstMeasured` compares the
 * model with the real runs that exist.
 *
 * The functions are pure: no clocks, no randomness, no I/O. Inputs are checked at the edge and a bad
 * one throws `DinomoError('INVALID_OPTION')` naming the field to fix.
 *
 * The assumptions, in the order the model uses them (each is repeated where it is used):
 *
 * 1. Key popularity is Zipf over `workload.keys` keys with `workload.zipfExponent`, and every cache
 *    holds the most popular keys it can (a perfect LFU). The DAC is adaptive, not a perfect LFU,
 *    which is one reason the hit ratios are calibrated against the measurement (3).
 * 2. Caches are per KN thread, as the DAC is (DESIGN section 7); `cacheEntriesPerKn` is the sum over
 *    a KN's threads. With ownership ('dinomo', 'dinomo-n') each thread owns 1/(N x threads) of the
 *    keys, hot keys spread evenly, so the cluster's caches together hold the top N x V keys as
 *    values and the next N x S as shortcuts. In 'clover' every thread serves every key, so each
 *    thread's cache holds the same top keys whatever N is; its capacity is the KN's shortcut entries
 *    plus its value entries' bytes re-spent on shortcuts, split over the KN's threads.
 * 3. Calibration of hit ratios: the measured fractions at the measured N are turned into effective
 *    cache sizes (the number of top keys whose popularity mass equals the measured value-hit
 *    fraction, and the one that equals the measured non-miss fraction). For ownership modes these
 *    sizes grow in proportion to the number of KN threads; for 'clover' they stay put. So the
 *    correction is a capacity factor ("the cache behaves as if it held c times the stated entries"),
 *    not an additive offset, because an offset would not shrink as a larger cache takes misses away.
 *    Log hits (reads of a thread's own unmerged writes) keep their measured fraction of gets.
 * 4. Round trips per get of each kind (value, shortcut, log, miss) and per write are the measured
 *    ones, constant in N, except for 'clover': a shortcut read walks one more RT per version written
 *    by another cache since this cache last touched the key, and a write retries its CAS when another
 *    write to the same key raced it (see `staleHopsPerShortcutRead` and `cloverWriteRts`). Any part
 *    of the measured RTs per op that the per-kind numbers do not explain is kept as a constant
 *    per-op residual.
 * 5. KN CPU per operation is the measured one and does not change with N or with the hit mix.
 * 6. A KN thread serves min(1e6 / cpuUs, concurrency x 1e6 / latencyUs) ops/s, where latencyUs =
 *    cpuUs + RTs x rtUs (client-to-KN messaging and the group-commit wait are not in it). Without
 *    selective replication (which this engine does not have yet) the thread that owns the hottest
 *    key takes that key's whole load, so an ownership cluster serves at most 1e6 / cpuUs divided by
 *    that thread's share of the operations.
 * 7. The DPM caps the cluster at dpmOpsPerSec one-sided operations, gbps of bandwidth and dpmCores
 *    of merge CPU.
 */

/** The network between KNs and the DPM. */
export interface NetworkPreset {
  name: string;
  description: string;
  /** One one-sided round trip (read, write or CAS), in microseconds. */
  rtUs: number;
  /** DPM link bandwidth, in Gb/s. */
  gbps: number;
  /** max one-sided ops/s the DPM NIC serves */
  dpmOpsPerSec: number;
}

/**
 * The networks the model knows. `fdr` is the paper's; `this-machine-shm` holds conservative defaults
 * for this machine until measured values replace them through `measuredPreset`.
 */
export const networkPresets: {
  readonly fdr: NetworkPreset;
  readonly 'this-machine-shm': NetworkPreset;
} = Object.freeze({
  fdr: Object.freeze({
    name: 'fdr',
    description:
      'ConnectX-3 FDR InfiniBand as in the paper: one-sided round trip about 2 us, 56 Gb/s. ' +
      'Assumption: the DPM NIC serves about 35 M small one-sided operations per second (the ' +
      'message-rate class of a ConnectX-3); it is not a paper number.',
    rtUs: 2,
    gbps: 56,
    dpmOpsPerSec: 35e6,
  }),
  'this-machine-shm': Object.freeze({
    name: 'this-machine-shm',
    description:
      'libfabric shm on this 2-core machine, conservative defaults to be replaced by measured ' +
      'values (measuredPreset): 5 us per round trip (about twice the 2.5 us seen in prototypes), ' +
      '10 Gb/s of copy bandwidth between processes, and 400 K one-sided operations per second ' +
      '(one DPM progress thread at about 2.5 us per operation).',
    rtUs: 5,
    gbps: 10,
    dpmOpsPerSec: 4e5,
  }),
});

/**
 * A preset from measured values: the round trip in microseconds, the bandwidth in Gb/s and the
 * one-sided operations per second the DPM side served. Throws INVALID_OPTION on a bad value.
 */
export function measuredPreset(
  name: string,
  rtUs: number,
  gbps: number,
  dpmOpsPerSec: number,
): NetworkPreset {
  const preset: NetworkPreset = {
    name,
    description:
      `measured: ${rtUs} us per round trip, ${gbps} Gb/s, ` +
      `${dpmOpsPerSec} one-sided ops/s at the DPM`,
    rtUs,
    gbps,
    dpmOpsPerSec,
  };
  checkNetwork(preset, 'measuredPreset');
  return preset;
}

/** What one real run of one mode at `kns` KNs cost, per operation. */
export interface MeasuredCosts {
  mode: ClusterMode;
  kns: number;
  threadsPerKn: number;
  /** Measured throughput of that run (for the check). */
  opsPerSec: number;
  /** Fraction of the workload's operations that are gets. */
  readFraction: number;
  /** Fractions of gets, by how they were served. */
  hitRatio: HitRatio;
  /** Measured average KN-DPM round trips per operation. */
  rtsPerOp: number;
  /** RTs per get by how it was served (value 0, shortcut ~1, log 0, miss ~2+). */
  rtsByHit: HitRatio;
  /** RTs on a write's own path (amortised group commit for dinomo). */
  rtsPerWrite: number;
  /** Average bytes moved per RT. */
  bytesPerRt: number;
  /** KN thread CPU per op (us), measured. */
  knCpuUsPerOp: number;
  /** DPM merge CPU per write (us), 0 for clover. */
  dpmCpuUsPerWrite: number;
}

/** The workload to predict for. */
export interface WorkloadShape {
  keys: number;
  zipfExponent: number;
  readFraction: number;
  valueBytes: number;
  /** Cache entries of one KN, summed over its threads (see the module comment, assumption 2). */
  cacheEntriesPerKn: { values: number; shortcuts: number };
}

/** The cluster to predict for. */
export interface ClusterShape {
  threadsPerKn: number;
  dpmCores: number;
  clientConcurrencyPerThread: number;
  /**
   * True models the paper's selective replication of hot keys: no owner thread is hotter than the
   * others. False (the default) models this engine, which has none yet: the owner of the hottest
   * key caps an ownership cluster (assumption 6).
   */
  hotKeyReplication?: boolean;
}

/** One predicted point. It is a model, never a measurement. */
export interface ModelPoint {
  kns: number;
  opsPerSec: number;
  /** The bound that sets `opsPerSec`. */
  bottleneck: 'kn-cpu' | 'latency' | 'dpm-nic-ops' | 'dpm-bandwidth' | 'dpm-cpu';
  rtsPerOp: number;
  /** Fraction of gets served without an index lookup (value, shortcut or log). */
  hitRatio: number;
  label: 'model';
}

/** One row of the model-against-measurement check. */
export interface ModelCheckRow {
  kns: number;
  modelOpsPerSec: number;
  measuredOpsPerSec: number;
  /** (model - measured) / measured x 100: positive when the model is too optimistic. */
  errorPct: number;
}

/** The most KNs the model accepts. */
export const maxModelKns = 64;

/** The assumptions of the model in one line each, to print next to its output. */
export const costModelAssumptions: readonly string[] = Object.freeze([
  'This is a model extrapolated from one real run; points other than the measured ones are not measurements.',
  'Keys are Zipf-popular and every cache holds the most popular keys it can.',
  'dinomo/dinomo-n: each KN thread owns an equal share of the keys, so the caches together cover N times more hot keys; clover: every cache covers the same top keys whatever N is.',
  'Hit ratios are calibrated to the measured run by an effective cache size; log hits keep their measured fraction.',
  'Round trips per get kind and per write, and KN CPU per op, are the measured ones, constant in N.',
  'clover: a shortcut read walks one extra RT per version written by another cache since this cache last touched the key; a write retries (2 RTs) when another write to the key raced its CAS.',
  'Without selective replication the owner thread of the hottest key caps dinomo and dinomo-n.',
  'The DPM caps the cluster by its NIC operation rate, its bandwidth and its merge CPU.',
]);

/** The fraction of accesses that go to the `topKeys` hottest of `keys` Zipf-popular keys. */
export function zipfTopMass(keys: number, exponent: number, topKeys: number): number {
  checkKeys(keys, 'keys');
  checkExponent(exponent, 'exponent');
  checkNonNegative(topKeys, 'topKeys');
  return new ZipfMass(keys, exponent).top(topKeys);
}

/**
 * The modelled hit ratios of gets at `kns` KNs, calibrated to the measured run (assumption 3). These
 * are the fractions behind `ModelPoint.hitRatio`, by kind.
 */
export function predictHitRatios(
  costs: MeasuredCosts,
  workload: WorkloadShape,
  cluster: ClusterShape,
  kns: number,
): HitRatio {
  checkCosts(costs);
  checkWorkload(workload);
  checkCluster(cluster);
  checkKns(kns, 'kns');
  return new Model(costs, workload, cluster, networkPresets.fdr).hitRatios(kns);
}

/** Predicted throughput at each of `knCounts` KNs, each point labelled 'model'. */
export function predictScaling(
  costs: MeasuredCosts,
  workload: WorkloadShape,
  cluster: ClusterShape,
  network: NetworkPreset,
  knCounts: readonly number[],
): ModelPoint[] {
  checkCosts(costs);
  checkWorkload(workload);
  checkCluster(cluster);
  checkNetwork(network, 'network');
  checkArray(knCounts, 'knCounts must be an array of KN counts');
  knCounts.forEach((kns, i) => checkKns(kns, `knCounts[${i}]`));
  const model = new Model(costs, workload, cluster, network);
  return knCounts.map((kns) => model.point(kns));
}

/**
 * The model against real runs: one row per measured run, in the order given. Every measured KN
 * count must have a model point, and every measured throughput must be above 0.
 */
export function checkAgainstMeasured(
  model: readonly ModelPoint[],
  measured: readonly { kns: number; opsPerSec: number }[],
): ModelCheckRow[] {
  checkArray(model, 'model must be the array predictScaling returned');
  checkArray(measured, 'measured must be an array of { kns, opsPerSec }');
  return measured.map((run, i) => {
    checkKns(run.kns, `measured[${i}].kns`);
    checkFinite(run.opsPerSec, `measured[${i}].opsPerSec`);
    if (run.opsPerSec <= 0) {
      fail(`measured[${i}].opsPerSec must be above 0 to compute an error, got ${run.opsPerSec}`);
    }
    const point = model.find((p) => p.kns === run.kns);
    if (point === undefined) {
      fail(`the model has no point at ${run.kns} KNs: include ${run.kns} in knCounts`);
    }
    checkFinite(point.opsPerSec, `the model point at ${run.kns} KNs`);
    return {
      kns: run.kns,
      modelOpsPerSec: point.opsPerSec,
      measuredOpsPerSec: run.opsPerSec,
      errorPct: ((point.opsPerSec - run.opsPerSec) / run.opsPerSec) * 100,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Zipf popularity mass.

/** Terms of a generalised harmonic number summed one by one; the rest is Euler-Maclaurin. */
const exactHarmonicTerms = 4096;

/**
 * H(n, s) = sum of i^-s for i = 1..n. Up to `exactHarmonicTerms` terms are summed exactly, smallest
 * first (as buildZipfCdf does, so small terms do not vanish); the tail is the Euler-Maclaurin
 * formula up to the third-derivative term, whose error at i > 4096 is below 1e-20 of the sum.
 */
function harmonic(n: number, s: number): number {
  if (n <= 0) return 0;
  if (s === 0) return n;
  const exact = Math.min(n, exactHarmonicTerms);
  let sum = 0;
  for (let i = exact; i >= 1; i--) sum += Math.pow(i, -s);
  if (n <= exactHarmonicTerms) return sum;
  const a = exactHarmonicTerms + 1;
  const f = (x: number): number => Math.pow(x, -s);
  const d1 = (x: number): number => -s * Math.pow(x, -s - 1);
  const d3 = (x: number): number => -s * (s + 1) * (s + 2) * Math.pow(x, -s - 3);
  const u = 1 - s;
  const logRatio = Math.log(n / a);
  // The integral of x^-s from a to n, written with expm1 so that s near 1 keeps its precision.
  const integral = u === 0 ? logRatio : (Math.pow(a, u) * Math.expm1(u * logRatio)) / u;
  const tail = integral + (f(a) + f(n)) / 2 + (d1(n) - d1(a)) / 12 - (d3(n) - d3(a)) / 720;
  return sum + tail;
}

/** Popularity mass of the top keys of one Zipf distribution, with its normaliser computed once. */
class ZipfMass {
  private readonly total: number;

  constructor(
    readonly keys: number,
    readonly exponent: number,
  ) {
    this.total = harmonic(keys, exponent);
  }

  /**
   * Mass of the `top` hottest keys. A fractional count takes that fraction of the next key's mass,
   * so the function is continuous and can be inverted.
   */
  top(top: number): number {
    if (top <= 0) return 0;
    if (top >= this.keys) return 1;
    if (this.exponent === 0) return top / this.keys;
    const whole = Math.floor(top);
    const partial = (top - whole) * Math.pow(whole + 1, -this.exponent);
    return Math.min(1, (harmonic(whole, this.exponent) + partial) / this.total);
  }

  /** The (fractional) number of top keys whose mass is `mass`: the inverse of `top`. */
  keysFor(mass: number): number {
    if (mass <= 0) return 0;
    if (mass >= 1) return this.keys;
    let lo = 0;
    let hi = this.keys;
    for (let i = 0; i < 200 && hi - lo > 1e-9 * Math.max(1, lo); i++) {
      const mid = (lo + hi) / 2;
      if (this.top(mid) < mass) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  /** The popularity of the hottest key. */
  hottest(): number {
    return this.top(1);
  }

  /** Sum of p_i^2: the probability that two independent accesses hit the same key. */
  collision(): number {
    return harmonic(this.keys, 2 * this.exponent) / (this.total * this.total);
  }
}

// ---------------------------------------------------------------------------------------------
// The model.

/** Round trips of a get by kind when the measured run had no get of that kind (DESIGN section 5). */
const designRtsByHit: HitRatio = { value: 0, shortcut: 1, log: 0, miss: 2 };

/**
 * RTs of a write when the measured run had no write. dinomo and dinomo-n: a flush of a batch of one
 * (the data write and the commit-offset write), the worst case of group commit. clover: the new
 * version's write and the CAS that links it.
 */
const designRtsPerWrite = 2;

/**
 * Assumption (clover): a write whose CAS lost a race retries by reading the new tail and issuing the
 * CAS again, 2 RTs per retry.
 */
const cloverRetryRts = 2;

/**
 * Assumption (clover): a write races with any other write to the same key that lands during its
 * window, the time of the version write and the CAS, 2 RTs.
 */
const cloverRaceWindowRts = 2;

/** Conflict probabilities are capped here, so the expected retries stay finite (at most 9). */
const maxConflictProbability = 0.9;

/**
 * Assumption (clover): the expected number of extra hops of a shortcut
 * read is writeFraction x (M - 1) / M x M = writeFraction x (M - 1), where M = N x threadsPerKn is
 * the number of independent shortcut caches (one per KN thread, as the DAC is). (M - 1) / M is the
 * share of a key's accesses made by other caches, and M is the number of accesses to the key between
 * two accesses by the same cache when every cache sees the same load. Each other-cache write in that
 * interval adds one version to the chain, hence one hop. A cache's own write refreshes its shortcut.
 */
function staleHopsPerShortcutRead(
  writeFraction: number,
  kns: number,
  threadsPerKn: number,
): number {
  const caches = kns * threadsPerKn;
  return writeFraction * (caches - 1);
}

interface Bound {
  opsPerSec: number;
  bottleneck: ModelPoint['bottleneck'];
}

class Model {
  private readonly zipf: ZipfMass;
  /** Popularity of the hottest key, and the chance that two accesses hit one key. */
  private readonly hottest: number;
  private readonly collision: number;
  private readonly ownership: boolean;
  private readonly writeFraction: number;
  /** Effective cache sizes (top keys) at the measured N, or null when the run had no gets. */
  private readonly measuredKeys: { value: number; cached: number; log: number } | null;
  private readonly rtsByHit: HitRatio;
  private readonly shortcutMeasured: boolean;
  private readonly residualRts: number;
  /** Write RTs without CAS retries (clover), or the measured write RTs (the others). */
  private readonly baseWriteRts: number;

  constructor(
    private readonly costs: MeasuredCosts,
    private readonly workload: WorkloadShape,
    private readonly cluster: ClusterShape,
    private readonly network: NetworkPreset,
  ) {
    this.zipf = new ZipfMass(workload.keys, workload.zipfExponent);
    this.hottest = this.zipf.hottest();
    this.collision = this.zipf.collision();
    this.ownership = costs.mode !== 'clover';
    this.writeFraction = 1 - workload.readFraction;

    // Assumption 3: measured fractions become effective cache sizes. Fractions that do not sum to 1
    // (rounding in a report) are normalised first.
    const h = costs.hitRatio;
    const sum = h.value + h.shortcut + h.log + h.miss;
    const hadGets = costs.readFraction > 0 && sum > 0;
    this.measuredKeys = hadGets
      ? {
          value: this.zipf.keysFor(h.value / sum),
          cached: this.zipf.keysFor(1 - h.miss / sum),
          log: h.log / sum,
        }
      : null;

    // Assumption 4: a kind of get the run never served has no measured cost; the design's is used.
    const measuredKind = (kind: keyof HitRatio): number =>
      hadGets && h[kind] > 0 ? costs.rtsByHit[kind] : designRtsByHit[kind];
    this.rtsByHit = {
      value: measuredKind('value'),
      shortcut: measuredKind('shortcut'),
      log: measuredKind('log'),
      miss: measuredKind('miss'),
    };
    this.shortcutMeasured = hadGets && h.shortcut > 0;
    const hadWrites = costs.readFraction < 1;
    const measuredWriteRts = hadWrites ? costs.rtsPerWrite : designRtsPerWrite;

    // The part of the measured RTs per op that the per-kind numbers do not explain.
    const explainedRts =
      costs.readFraction *
        (h.value * costs.rtsByHit.value +
          h.shortcut * costs.rtsByHit.shortcut +
          h.log * costs.rtsByHit.log +
          h.miss * costs.rtsByHit.miss) +
      (1 - costs.readFraction) * costs.rtsPerWrite;
    this.residualRts = costs.rtsPerOp - explainedRts;

    // clover: take out of the measured write RTs the retries the race model gives for the measured
    // run (its write rate, this network's round trip), so that only the retries come back with N.
    // Assumption: the network given is the one the run was measured on; when it is not, this part
    // of the correction is approximate.
    if (costs.mode === 'clover' && hadWrites) {
      const writesPerSec = (1 - costs.readFraction) * costs.opsPerSec;
      this.baseWriteRts = Math.max(0, measuredWriteRts - this.cloverRetryRts(writesPerSec));
    } else {
      this.baseWriteRts = measuredWriteRts;
    }
  }

  /** Hit ratios of gets at `kns` KNs (assumptions 2 and 3). */
  hitRatios(kns: number): HitRatio {
    const threads = this.cluster.threadsPerKn;
    let valueKeys: number;
    let cachedKeys: number;
    let log: number;
    if (this.measuredKeys !== null) {
      // Ownership: the effective sizes grow with the number of KN threads (each thread's cache has a
      // fixed size, and each covers its own keys). clover: every cache covers the same keys.
      const scale = this.ownership
        ? (kns * threads) / (this.costs.kns * this.costs.threadsPerKn)
        : 1;
      valueKeys = this.measuredKeys.value * scale;
      cachedKeys = this.measuredKeys.cached * scale;
      log = this.measuredKeys.log;
    } else {
      const entries = this.workload.cacheEntriesPerKn;
      if (this.ownership) {
        valueKeys = kns * entries.values;
        cachedKeys = kns * (entries.values + entries.shortcuts);
      } else {
        valueKeys = 0;
        cachedKeys = cloverShortcutsPerKn(this.workload) / threads;
      }
      log = 0;
    }
    const value = this.zipf.top(valueKeys);
    const cached = Math.max(value, this.zipf.top(cachedKeys));
    const logShare = Math.min(log, cached - value);
    return {
      value,
      shortcut: cached - value - logShare,
      log: logShare,
      miss: 1 - cached,
    };
  }

  point(kns: number): ModelPoint {
    const hits = this.hitRatios(kns);
    const readRts = this.readRts(kns, hits);
    const hitRatio = hits.value + hits.shortcut + hits.log;
    let result: { bound: Bound; rtsPerOp: number };
    if (this.costs.mode === 'clover' && this.writeFraction > 0) {
      result = this.cloverFixedPoint(kns, readRts);
    } else {
      const rtsPerOp = this.rtsPerOp(readRts, this.baseWriteRts);
      result = { bound: this.bound(kns, rtsPerOp), rtsPerOp };
    }
    return {
      kns,
      opsPerSec: result.bound.opsPerSec,
      bottleneck: result.bound.bottleneck,
      rtsPerOp: result.rtsPerOp,
      hitRatio,
      label: 'model',
    };
  }

  /** Average RTs of a get at `kns` KNs. */
  private readRts(kns: number, hits: HitRatio): number {
    let shortcutRts = this.rtsByHit.shortcut;
    if (this.costs.mode === 'clover') {
      const now = staleHopsPerShortcutRead(this.writeFraction, kns, this.cluster.threadsPerKn);
      // A measured shortcut cost already holds the stale hops of the measured run: only the
      // difference is added. The design's 1 RT is a fresh read, so it gets all of them.
      const then = this.shortcutMeasured
        ? staleHopsPerShortcutRead(
            1 - this.costs.readFraction,
            this.costs.kns,
            this.costs.threadsPerKn,
          )
        : 0;
      shortcutRts = Math.max(0, shortcutRts + now - then);
    }
    return (
      hits.value * this.rtsByHit.value +
      hits.shortcut * shortcutRts +
      hits.log * this.rtsByHit.log +
      hits.miss * this.rtsByHit.miss
    );
  }

  private rtsPerOp(readRts: number, writeRts: number): number {
    const r = this.workload.readFraction;
    return Math.max(0, r * readRts + (1 - r) * writeRts + this.residualRts);
  }

  /**
   * Expected extra RTs of a clover write from CAS races at `writesPerSec` cluster writes. Assumption:
   * any two writes to one key that are in flight together race, whichever KN or thread issued them.
   * A write's chance to be raced is then the expected number of other writes to its key landing in
   * its window: sum over keys of p_k x (p_k x writesPerSec x window) = collision x writesPerSec x
   * window. It grows with N through the write rate, and is largest on hot keys. Retries are
   * geometric: P / (1 - P) of them per write.
   */
  private cloverRetryRts(writesPerSec: number): number {
    const windowSec = (cloverRaceWindowRts * this.network.rtUs) / 1e6;
    const p = Math.min(maxConflictProbability, this.collision * writesPerSec * windowSec);
    return (cloverRetryRts * p) / (1 - p);
  }

  /**
   * clover's write RTs depend on the throughput, which depends on them: the throughput is the fixed
   * point X = f(X), where f (the bound with the retries that X writes/s cause) falls as X grows, so
   * bisection on [0, f(0)] finds it.
   */
  private cloverFixedPoint(kns: number, readRts: number): { bound: Bound; rtsPerOp: number } {
    const at = (x: number): { bound: Bound; rtsPerOp: number } => {
      const writeRts = this.baseWriteRts + this.cloverRetryRts(this.writeFraction * x);
      const rtsPerOp = this.rtsPerOp(readRts, writeRts);
      return { bound: this.bound(kns, rtsPerOp), rtsPerOp };
    };
    let lo = 0;
    let hi = at(0).bound.opsPerSec;
    for (let i = 0; i < 100 && hi - lo > 1e-9 * hi; i++) {
      const mid = (lo + hi) / 2;
      if (at(mid).bound.opsPerSec > mid) lo = mid;
      else hi = mid;
    }
    // At hi the retries are those of a throughput at least the fixed point: the cautious side.
    return at(hi);
  }

  /** The throughput at `kns` KNs with `rtsPerOp`, and the bound that sets it (assumptions 5-7). */
  private bound(kns: number, rtsPerOp: number): Bound {
    const { costs, cluster, network } = this;
    const threads = kns * cluster.threadsPerKn;
    const cpuUs = costs.knCpuUsPerOp;
    const latencyUs = cpuUs + rtsPerOp * network.rtUs;
    const cpuRate = 1e6 / cpuUs;
    const latencyRate = (cluster.clientConcurrencyPerThread * 1e6) / latencyUs;
    let best: Bound =
      cpuRate <= latencyRate
        ? { opsPerSec: threads * cpuRate, bottleneck: 'kn-cpu' }
        : { opsPerSec: threads * latencyRate, bottleneck: 'latency' };
    const tighter = (opsPerSec: number, bottleneck: Bound['bottleneck']): void => {
      if (opsPerSec < best.opsPerSec) best = { opsPerSec, bottleneck };
    };
    // Assumption 6: without selective replication, the thread that owns the hottest key serves all
    // of that key's operations plus an even share of the others, at no more than its CPU allows.
    if (this.ownership && cluster.hotKeyReplication !== true) {
      const share = this.hottest + (1 - this.hottest) / threads;
      tighter(cpuRate / share, 'kn-cpu');
    }
    // Assumption 7: the DPM's limits. A limit with nothing to divide (no RTs, no bytes, no writes)
    // does not bind.
    if (rtsPerOp > 0) tighter(network.dpmOpsPerSec / rtsPerOp, 'dpm-nic-ops');
    const bitsPerOp = rtsPerOp * costs.bytesPerRt * 8;
    if (bitsPerOp > 0) tighter((network.gbps * 1e9) / bitsPerOp, 'dpm-bandwidth');
    const dpmCpuUsPerOp = this.writeFraction * costs.dpmCpuUsPerWrite;
    if (dpmCpuUsPerOp > 0) tighter((cluster.dpmCores * 1e6) / dpmCpuUsPerOp, 'dpm-cpu');
    return best;
  }
}

/**
 * Assumption (clover, analytic only): a KN's cache spends all its bytes on shortcuts, so its value
 * entries count as the shortcuts their bytes would hold. Keys are the benchmark's `user:<index>`.
 */
function cloverShortcutsPerKn(workload: WorkloadShape): number {
  const keyBytes = defaultKeyPrefix.length + String(workload.keys - 1).length;
  const asShortcuts =
    valueChargeBytes(keyBytes, workload.valueBytes) / shortcutChargeBytes(keyBytes);
  return workload.cacheEntriesPerKn.shortcuts + workload.cacheEntriesPerKn.values * asShortcuts;
}

// ---------------------------------------------------------------------------------------------
// Input checks.

function fail(message: string): never {
  throw new DinomoError('INVALID_OPTION', message);
}

function checkFinite(value: number, name: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    fail(`${name} must be a finite number, got ${String(value)}`);
  }
}

function checkNonNegative(value: number, name: string): void {
  checkFinite(value, name);
  if (value < 0) fail(`${name} must be >= 0, got ${value}`);
}

function checkPositive(value: number, name: string): void {
  checkFinite(value, name);
  if (value <= 0) fail(`${name} must be above 0, got ${value}`);
}

function checkFraction(value: number, name: string): void {
  checkFinite(value, name);
  if (value < 0 || value > 1) fail(`${name} must be a fraction in [0, 1], got ${value}`);
}

function checkInteger(value: number, name: string, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
}

function checkKns(value: number, name: string): void {
  checkInteger(value, name, 1, maxModelKns);
}

function checkKeys(value: number, name: string): void {
  checkInteger(value, name, 1, Number.MAX_SAFE_INTEGER);
}

function checkExponent(value: number, name: string): void {
  checkNonNegative(value, name);
}

/** Takes `unknown` so that the caller's array keeps its element type (Array.isArray gives any[]). */
function checkArray(value: unknown, message: string): void {
  if (!Array.isArray(value)) fail(message);
}

function checkObject(value: unknown, name: string): void {
  if (typeof value !== 'object' || value === null) fail(`${name} must be an object`);
}

function checkHitFields(value: HitRatio, name: string, check: typeof checkFraction): void {
  checkObject(value, name);
  check(value.value, `${name}.value`);
  check(value.shortcut, `${name}.shortcut`);
  check(value.log, `${name}.log`);
  check(value.miss, `${name}.miss`);
}

const modes: readonly ClusterMode[] = clusterModes;

function checkCosts(costs: MeasuredCosts): void {
  checkObject(costs, 'costs');
  if (!modes.includes(costs.mode)) {
    fail(`costs.mode must be one of ${modes.join(', ')}, got ${String(costs.mode)}`);
  }
  checkKns(costs.kns, 'costs.kns');
  checkInteger(costs.threadsPerKn, 'costs.threadsPerKn', 1, 1024);
  checkNonNegative(costs.opsPerSec, 'costs.opsPerSec');
  checkFraction(costs.readFraction, 'costs.readFraction');
  checkHitFields(costs.hitRatio, 'costs.hitRatio', checkFraction);
  const h = costs.hitRatio;
  const sum = h.value + h.shortcut + h.log + h.miss;
  // A report rounds each fraction; more than a rounding error above 1 is a mistake.
  if (sum > 1.001) {
    fail(`costs.hitRatio fractions must sum to at most 1, got ${sum}`);
  }
  checkNonNegative(costs.rtsPerOp, 'costs.rtsPerOp');
  checkHitFields(costs.rtsByHit, 'costs.rtsByHit', checkNonNegative);
  checkNonNegative(costs.rtsPerWrite, 'costs.rtsPerWrite');
  checkNonNegative(costs.bytesPerRt, 'costs.bytesPerRt');
  checkPositive(costs.knCpuUsPerOp, 'costs.knCpuUsPerOp');
  checkNonNegative(costs.dpmCpuUsPerWrite, 'costs.dpmCpuUsPerWrite');
}

function checkWorkload(workload: WorkloadShape): void {
  checkObject(workload, 'workload');
  checkKeys(workload.keys, 'workload.keys');
  checkExponent(workload.zipfExponent, 'workload.zipfExponent');
  checkFraction(workload.readFraction, 'workload.readFraction');
  checkNonNegative(workload.valueBytes, 'workload.valueBytes');
  checkObject(workload.cacheEntriesPerKn, 'workload.cacheEntriesPerKn');
  checkNonNegative(workload.cacheEntriesPerKn.values, 'workload.cacheEntriesPerKn.values');
  checkNonNegative(workload.cacheEntriesPerKn.shortcuts, 'workload.cacheEntriesPerKn.shortcuts');
}

function checkCluster(cluster: ClusterShape): void {
  checkObject(cluster, 'cluster');
  checkInteger(cluster.threadsPerKn, 'cluster.threadsPerKn', 1, 1024);
  checkPositive(cluster.dpmCores, 'cluster.dpmCores');
  checkPositive(cluster.clientConcurrencyPerThread, 'cluster.clientConcurrencyPerThread');
  const replication: unknown = cluster.hotKeyReplication;
  if (replication !== undefined && typeof replication !== 'boolean') {
    fail(`cluster.hotKeyReplication must be true or false, got a ${typeof replication}`);
  }
}

function checkNetwork(network: NetworkPreset, name: string): void {
  checkObject(network, name);
  if (typeof network.name !== 'string' || network.name.trim() === '') {
    fail(`${name}.name must be a non-empty string`);
  }
  checkPositive(network.rtUs, `${name}.rtUs`);
  checkPositive(network.gbps, `${name}.gbps`);
  checkPositive(network.dpmOpsPerSec, `${name}.dpmOpsPerSec`);
}
