import { describe, expect, it } from 'vitest';
import { buildZipfCdf } from '../../../src/bench/zipf.js';
import {
  checkAgainstMeasured,
  costModelAssumptions,
  measuredPreset,
  networkPresets,
  predictHitRatios,
  predictScaling,
  zipfTopMass,
  type ClusterShape,
  type MeasuredCosts,
  type ModelPoint,
  type WorkloadShape,
} from '../../../src/bench/cost-model.js';
import { isDinomoError } from '../../../src/errors/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isDinomoError(err) ? err.code : `not a DinomoError: ${String(err)}`;
  }
  return 'no error';
}

const kns = [1, 2, 4, 8, 16] as const;

/** Read-mostly (95/5), Zipf 0.99 over a million keys, 1 KB values. */
const workload: WorkloadShape = {
  keys: 1_000_000,
  zipfExponent: 0.99,
  readFraction: 0.95,
  valueBytes: 1000,
  cacheEntriesPerKn: { values: 2_000, shortcuts: 20_000 },
};

const cluster: ClusterShape = { threadsPerKn: 8, dpmCores: 4, clientConcurrencyPerThread: 8 };

/** A plausible dinomo run at 1 KN of 2 threads. */
const dinomoCosts: MeasuredCosts = {
  mode: 'dinomo',
  kns: 1,
  threadsPerKn: 2,
  opsPerSec: 200_000,
  readFraction: 0.95,
  hitRatio: { value: 0.5, shortcut: 0.15, log: 0.01, miss: 0.34 },
  rtsPerOp: 0.9,
  rtsByHit: { value: 0, shortcut: 1, log: 0, miss: 2.1 },
  rtsPerWrite: 0.2,
  bytesPerRt: 600,
  knCpuUsPerOp: 4,
  dpmCpuUsPerWrite: 2,
};

/** A plausible clover run at 1 KN of 2 threads: shortcuts only, synchronous writes. */
const cloverCosts: MeasuredCosts = {
  mode: 'clover',
  kns: 1,
  threadsPerKn: 2,
  opsPerSec: 100_000,
  readFraction: 0.95,
  hitRatio: { value: 0, shortcut: 0.6, log: 0, miss: 0.4 },
  rtsPerOp: 0.95 * (0.6 * 1.05 + 0.4 * 2.2) + 0.05 * 2.05,
  rtsByHit: { value: 0, shortcut: 1.05, log: 0, miss: 2.2 },
  rtsPerWrite: 2.05,
  bytesPerRt: 600,
  knCpuUsPerOp: 5,
  dpmCpuUsPerWrite: 0,
};

describe('zipfTopMass', () => {
  it('is the share of the top keys when the distribution is uniform', () => {
    expect(zipfTopMass(1000, 0, 100)).toBeCloseTo(0.1, 12);
    expect(zipfTopMass(1000, 0, 250)).toBeCloseTo(0.25, 12);
  });

  it('is 0 for no keys and 1 for all keys (or more)', () => {
    for (const exponent of [0, 0.5, 0.99, 1, 1.5]) {
      expect(zipfTopMass(5000, exponent, 0)).toBe(0);
      expect(zipfTopMass(5000, exponent, 5000)).toBe(1);
      expect(zipfTopMass(5000, exponent, 1e9)).toBe(1);
    }
  });

  it('never decreases with the number of top keys', () => {
    for (const exponent of [0, 0.5, 0.99, 1.2]) {
      let previous = 0;
      for (let top = 0; top <= 600; top++) {
        const mass = zipfTopMass(600, exponent, top);
        expect(mass).toBeGreaterThanOrEqual(previous);
        previous = mass;
      }
      expect(previous).toBe(1);
    }
  });

  it('matches the generator CDF, below and above the exactly summed terms', () => {
    const keys = 100_000;
    for (const exponent of [0.5, 0.99, 1, 1.5]) {
      const cdf = buildZipfCdf(keys, exponent);
      for (const top of [1, 10, 1000, 4096, 4097, 5000, 50_000, 99_999]) {
        expect(zipfTopMass(keys, exponent, top)).toBeCloseTo(cdf[top - 1] as number, 10);
      }
    }
  });

  it('takes a fractional count as that fraction of the next key', () => {
    const two = zipfTopMass(1000, 0.99, 2);
    const three = zipfTopMass(1000, 0.99, 3);
    expect(zipfTopMass(1000, 0.99, 2.5)).toBeCloseTo((two + three) / 2, 12);
  });

  it('handles key spaces far beyond a CDF table', () => {
    const keys = 2 ** 40;
    const small = zipfTopMass(keys, 0.99, 1e6);
    const large = zipfTopMass(keys, 0.99, 1e9);
    expect(small).toBeGreaterThan(0);
    expect(large).toBeGreaterThan(small);
    expect(large).toBeLessThan(1);
  });

  it('rejects bad inputs with INVALID_OPTION', () => {
    expect(codeOf(() => zipfTopMass(0, 0.99, 1))).toBe('INVALID_OPTION');
    expect(codeOf(() => zipfTopMass(10.5, 0.99, 1))).toBe('INVALID_OPTION');
    expect(codeOf(() => zipfTopMass(10, -1, 1))).toBe('INVALID_OPTION');
    expect(codeOf(() => zipfTopMass(10, Number.NaN, 1))).toBe('INVALID_OPTION');
    expect(codeOf(() => zipfTopMass(10, 0.99, -1))).toBe('INVALID_OPTION');
    expect(codeOf(() => zipfTopMass(10, 0.99, Number.POSITIVE_INFINITY))).toBe('INVALID_OPTION');
  });
});

describe('network presets', () => {
  it('states FDR as in the paper, with its NIC assumption in the description', () => {
    const fdr = networkPresets.fdr;
    expect(fdr.rtUs).toBe(2);
    expect(fdr.gbps).toBe(56);
    expect(fdr.dpmOpsPerSec).toBeGreaterThan(0);
    expect(fdr.description).toMatch(/ConnectX-3/);
    expect(fdr.description).toMatch(/[Aa]ssumption/);
    expect(networkPresets['this-machine-shm'].description).toMatch(/measured/);
  });

  it('builds a measured preset and rejects bad values', () => {
    const preset = measuredPreset('shm-now', 2.7, 20, 1e6);
    expect(preset).toMatchObject({ name: 'shm-now', rtUs: 2.7, gbps: 20, dpmOpsPerSec: 1e6 });
    expect(preset.description).toMatch(/measured/);
    expect(codeOf(() => measuredPreset('', 2, 20, 1e6))).toBe('INVALID_OPTION');
    expect(codeOf(() => measuredPreset('x', -1, 20, 1e6))).toBe('INVALID_OPTION');
    expect(codeOf(() => measuredPreset('x', 0, 20, 1e6))).toBe('INVALID_OPTION');
    expect(codeOf(() => measuredPreset('x', 2, Number.NaN, 1e6))).toBe('INVALID_OPTION');
    expect(codeOf(() => measuredPreset('x', 2, 20, 0))).toBe('INVALID_OPTION');
    expect(codeOf(() => measuredPreset('x', 2, 20, Number.POSITIVE_INFINITY))).toBe(
      'INVALID_OPTION',
    );
  });
});

describe('predictScaling', () => {
  it('labels every point as a model', () => {
    for (const costs of [dinomoCosts, cloverCosts, { ...dinomoCosts, mode: 'dinomo-n' as const }]) {
      const points = predictScaling(costs, workload, cluster, networkPresets.fdr, kns);
      expect(points.map((p) => p.kns)).toEqual([...kns]);
      for (const p of points) {
        expect(p.label).toBe('model');
        expect(Number.isFinite(p.opsPerSec)).toBe(true);
        expect(p.opsPerSec).toBeGreaterThan(0);
        expect(p.hitRatio).toBeGreaterThanOrEqual(0);
        expect(p.hitRatio).toBeLessThanOrEqual(1);
      }
    }
    expect(costModelAssumptions.length).toBeGreaterThan(0);
    expect(costModelAssumptions[0]).toMatch(/model/);
  });

  it('dinomo: throughput and hit ratio grow with N on a read-mostly Zipf 0.99 workload (FDR)', () => {
    const points = predictScaling(dinomoCosts, workload, cluster, networkPresets.fdr, kns);
    const first = points[0] as ModelPoint;
    const last = points[points.length - 1] as ModelPoint;
    expect(last.opsPerSec).toBeGreaterThan(first.opsPerSec);
    for (let i = 1; i < points.length; i++) {
      expect((points[i] as ModelPoint).hitRatio).toBeGreaterThan(
        (points[i - 1] as ModelPoint).hitRatio,
      );
      // More hits, fewer round trips.
      expect((points[i] as ModelPoint).rtsPerOp).toBeLessThan(
        (points[i - 1] as ModelPoint).rtsPerOp,
      );
    }
  });

  it('clover: the hit ratio stays flat with N, and stale hops and CAS retries add RTs', () => {
    const points = predictScaling(cloverCosts, workload, cluster, networkPresets.fdr, kns);
    const first = points[0] as ModelPoint;
    for (const p of points) expect(p.hitRatio).toBeCloseTo(first.hitRatio, 12);
    for (let i = 1; i < points.length; i++) {
      expect((points[i] as ModelPoint).rtsPerOp).toBeGreaterThan(
        (points[i - 1] as ModelPoint).rtsPerOp,
      );
    }
  });

  it('clover: a read-only workload has no stale hops, so RTs stay flat too', () => {
    const readOnly = { ...workload, readFraction: 1 };
    const costs = { ...cloverCosts, readFraction: 1, rtsPerOp: 0.6 * 1 + 0.4 * 2.2 };
    const points = predictScaling(costs, readOnly, cluster, networkPresets.fdr, kns);
    for (const p of points) expect(p.rtsPerOp).toBeCloseTo((points[0] as ModelPoint).rtsPerOp, 9);
  });

  it('dinomo beats clover at 16 KNs on the same workload', () => {
    const at16 = (costs: MeasuredCosts): number =>
      (predictScaling(costs, workload, cluster, networkPresets.fdr, [16])[0] as ModelPoint)
        .opsPerSec;
    expect(at16(dinomoCosts)).toBeGreaterThan(at16(cloverCosts));
  });

  it('reproduces the measured hit ratios and RTs at the measured N (the calibration)', () => {
    const measuredCluster = { ...cluster, threadsPerKn: dinomoCosts.threadsPerKn };
    const hits = predictHitRatios(dinomoCosts, workload, measuredCluster, dinomoCosts.kns);
    expect(hits.value).toBeCloseTo(0.5, 6);
    expect(hits.shortcut).toBeCloseTo(0.15, 6);
    expect(hits.log).toBeCloseTo(0.01, 6);
    expect(hits.miss).toBeCloseTo(0.34, 6);
    const [point] = predictScaling(
      dinomoCosts,
      workload,
      measuredCluster,
      measuredPreset('here', 3, 20, 1e6),
      [dinomoCosts.kns],
    );
    expect(point?.rtsPerOp).toBeCloseTo(dinomoCosts.rtsPerOp, 6);
    expect(point?.hitRatio).toBeCloseTo(0.66, 6);
  });

  it('uses the analytic hit ratios when the measured run had no gets', () => {
    const writeOnly: MeasuredCosts = {
      ...dinomoCosts,
      readFraction: 0,
      hitRatio: { value: 0, shortcut: 0, log: 0, miss: 0 },
      rtsByHit: { value: 0, shortcut: 0, log: 0, miss: 0 },
      rtsPerOp: 0.2,
    };
    const { values, shortcuts } = workload.cacheEntriesPerKn;
    for (const n of [1, 4]) {
      const hits = predictHitRatios(writeOnly, workload, cluster, n);
      expect(hits.value).toBeCloseTo(zipfTopMass(workload.keys, 0.99, n * values), 12);
      expect(1 - hits.miss).toBeCloseTo(
        zipfTopMass(workload.keys, 0.99, n * (values + shortcuts)),
        12,
      );
    }
    const cloverWriteOnly: MeasuredCosts = { ...writeOnly, mode: 'clover', dpmCpuUsPerWrite: 0 };
    const shortcutsOnly = { ...workload, cacheEntriesPerKn: { values: 0, shortcuts: 8000 } };
    const flat = predictHitRatios(cloverWriteOnly, shortcutsOnly, cluster, 16);
    expect(flat.value).toBe(0);
    expect(flat.shortcut).toBeCloseTo(zipfTopMass(workload.keys, 0.99, 8000 / 8), 12);
  });

  it('names the DPM NIC as the bottleneck when it serves few operations', () => {
    const tiny = measuredPreset('tiny-nic', 2, 56, 10_000);
    for (const costs of [dinomoCosts, cloverCosts]) {
      for (const p of predictScaling(costs, workload, cluster, tiny, kns)) {
        expect(p.bottleneck).toBe('dpm-nic-ops');
        expect(p.opsPerSec).toBeCloseTo(10_000 / p.rtsPerOp, 3);
      }
    }
  });

  it('names DPM bandwidth and DPM CPU when they are the tightest', () => {
    const thin = measuredPreset('thin', 2, 0.001, 35e6);
    for (const p of predictScaling(dinomoCosts, workload, cluster, thin, kns)) {
      expect(p.bottleneck).toBe('dpm-bandwidth');
      expect(p.opsPerSec).toBeCloseTo(1e6 / (p.rtsPerOp * 600 * 8), 6);
    }
    const oneSlowCore = { ...cluster, dpmCores: 0.01 };
    for (const p of predictScaling(dinomoCosts, workload, oneSlowCore, networkPresets.fdr, kns)) {
      expect(p.bottleneck).toBe('dpm-cpu');
      expect(p.opsPerSec).toBeCloseTo((0.01 * 1e6) / (0.05 * 2), 3);
    }
  });

  it('names latency when clients keep too few requests in flight', () => {
    const slow = measuredPreset('slow', 100, 56, 35e6);
    const oneInFlight = { ...cluster, clientConcurrencyPerThread: 1 };
    const points = predictScaling(dinomoCosts, workload, oneInFlight, slow, [1, 2]);
    for (const p of points) {
      expect(p.bottleneck).toBe('latency');
      const latencyUs = dinomoCosts.knCpuUsPerOp + p.rtsPerOp * 100;
      expect(p.opsPerSec).toBeCloseTo((p.kns * 8 * 1e6) / latencyUs, 3);
    }
  });

  it('caps ownership modes by the owner of the hottest key unless hot keys are replicated', () => {
    const [without] = predictScaling(dinomoCosts, workload, cluster, networkPresets.fdr, [16]);
    const [withReplication] = predictScaling(
      dinomoCosts,
      workload,
      { ...cluster, hotKeyReplication: true },
      networkPresets.fdr,
      [16],
    );
    const cpuRate = 1e6 / dinomoCosts.knCpuUsPerOp;
    const hottest = zipfTopMass(workload.keys, 0.99, 1);
    expect(without?.bottleneck).toBe('kn-cpu');
    expect(without?.opsPerSec).toBeCloseTo(cpuRate / (hottest + (1 - hottest) / 128), 3);
    expect(withReplication?.opsPerSec).toBeCloseTo(16 * 8 * cpuRate, 3);
    // A uniform workload has no hot owner: it scales with the KN threads.
    const uniform = { ...workload, zipfExponent: 0 };
    const points = predictScaling(dinomoCosts, uniform, cluster, networkPresets.fdr, [1, 16]);
    const ratio = (points[1] as ModelPoint).opsPerSec / (points[0] as ModelPoint).opsPerSec;
    expect(ratio).toBeGreaterThan(15.9);
  });

  it('is a pure function of its inputs', () => {
    const a = predictScaling(cloverCosts, workload, cluster, networkPresets.fdr, kns);
    const b = predictScaling(cloverCosts, workload, cluster, networkPresets.fdr, kns);
    expect(b).toEqual(a);
  });

  it('rejects bad inputs with INVALID_OPTION', () => {
    const fdr = networkPresets.fdr;
    const run = (
      costs: MeasuredCosts,
      shape: WorkloadShape = workload,
      c: ClusterShape = cluster,
      counts: readonly number[] = kns,
    ) => codeOf(() => predictScaling(costs, shape, c, fdr, counts));
    expect(run({ ...dinomoCosts, kns: 0 })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, kns: 65 })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, kns: 1.5 })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, mode: 'redis' as MeasuredCosts['mode'] })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, readFraction: Number.NaN })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, readFraction: 1.1 })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, hitRatio: { ...dinomoCosts.hitRatio, value: 1.2 } })).toBe(
      'INVALID_OPTION',
    );
    expect(run({ ...dinomoCosts, hitRatio: { value: 0.6, shortcut: 0.6, log: 0, miss: 0 } })).toBe(
      'INVALID_OPTION',
    );
    expect(run({ ...dinomoCosts, rtsByHit: { ...dinomoCosts.rtsByHit, miss: -1 } })).toBe(
      'INVALID_OPTION',
    );
    expect(run({ ...dinomoCosts, bytesPerRt: -1 })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, knCpuUsPerOp: 0 })).toBe('INVALID_OPTION');
    expect(run({ ...dinomoCosts, opsPerSec: Number.POSITIVE_INFINITY })).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, { ...workload, keys: 0 })).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, { ...workload, zipfExponent: -0.5 })).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, { ...workload, readFraction: -0.1 })).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, { ...workload, cacheEntriesPerKn: { values: -1, shortcuts: 0 } })).toBe(
      'INVALID_OPTION',
    );
    expect(run(dinomoCosts, workload, { ...cluster, threadsPerKn: 0 })).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, workload, { ...cluster, dpmCores: 0 })).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, workload, { ...cluster, clientConcurrencyPerThread: -1 })).toBe(
      'INVALID_OPTION',
    );
    expect(run(dinomoCosts, workload, cluster, [0])).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, workload, cluster, [1, 65])).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, workload, cluster, [2.5])).toBe('INVALID_OPTION');
    expect(
      codeOf(() =>
        predictScaling(dinomoCosts, workload, cluster, { ...fdr, dpmOpsPerSec: -1 }, kns),
      ),
    ).toBe('INVALID_OPTION');
    expect(run(dinomoCosts, workload, cluster, [])).toBe('no error');
  });
});

describe('checkAgainstMeasured', () => {
  const model: ModelPoint[] = [
    { kns: 1, opsPerSec: 110, bottleneck: 'kn-cpu', rtsPerOp: 1, hitRatio: 0.5, label: 'model' },
    { kns: 2, opsPerSec: 150, bottleneck: 'kn-cpu', rtsPerOp: 1, hitRatio: 0.6, label: 'model' },
  ];

  it('computes the percentage error of the model against each measured run', () => {
    const rows = checkAgainstMeasured(model, [
      { kns: 2, opsPerSec: 200 },
      { kns: 1, opsPerSec: 100 },
    ]);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ kns: 2, modelOpsPerSec: 150, measuredOpsPerSec: 200 });
    expect(rows[0]?.errorPct).toBeCloseTo(-25, 12);
    expect(rows[1]?.errorPct).toBeCloseTo(10, 12);
  });

  it('works on the output of predictScaling', () => {
    const points = predictScaling(dinomoCosts, workload, cluster, networkPresets.fdr, [1, 2]);
    const rows = checkAgainstMeasured(points, [{ kns: 1, opsPerSec: 1_000_000 }]);
    const modelled = (points[0] as ModelPoint).opsPerSec;
    expect(rows[0]?.errorPct).toBeCloseTo(((modelled - 1e6) / 1e6) * 100, 9);
  });

  it('rejects a measured run without a model point, or with no throughput', () => {
    expect(codeOf(() => checkAgainstMeasured(model, [{ kns: 4, opsPerSec: 100 }]))).toBe(
      'INVALID_OPTION',
    );
    expect(codeOf(() => checkAgainstMeasured(model, [{ kns: 1, opsPerSec: 0 }]))).toBe(
      'INVALID_OPTION',
    );
    expect(codeOf(() => checkAgainstMeasured(model, [{ kns: 0, opsPerSec: 10 }]))).toBe(
      'INVALID_OPTION',
    );
    expect(codeOf(() => checkAgainstMeasured(model, [{ kns: 1, opsPerSec: Number.NaN }]))).toBe(
      'INVALID_OPTION',
    );
  });
});
