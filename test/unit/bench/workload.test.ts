import { describe, expect, it } from 'vitest';
import {
  ValueFactory,
  Workload,
  readValueStamp,
  resolveWorkloadSpec,
  workloadNames,
  workloadPresets,
  workloadSpec,
  type BenchOp,
  type OpKind,
  type RequestDistribution,
  type WorkloadName,
  type WorkloadOverrides,
  type WorkloadSpec,
} from '../../../src/bench/index.js';
import { isDinomoError } from '../../../src/errors/index.js';

function sample(workload: Workload, count: number): BenchOp[] {
  return Array.from({ length: count }, () => ({ ...workload.nextOp() }));
}

describe('workload presets', () => {
  it('has the seven named mixes', () => {
    expect([...workloadNames].sort()).toEqual(
      ['read-mostly', 'read-only', 'write-heavy', 'ycsb-a', 'ycsb-b', 'ycsb-c', 'ycsb-d'].sort(),
    );
    expect(workloadPresets['read-mostly'].readFraction).toBe(0.95);
    expect(workloadPresets['ycsb-a'].readFraction).toBe(0.5);
    expect(workloadPresets['ycsb-c'].readFraction).toBe(1);
    expect(workloadPresets['ycsb-d']).toMatchObject({
      readFraction: 0.95,
      updateFraction: 0,
      insertFraction: 0.05,
      deleteFraction: 0,
      distribution: 'latest',
    });
  });

  it.each(workloadNames)('%s has a mix that sums to 1 and its distribution', (name) => {
    const preset = workloadPresets[name];
    const sum =
      preset.readFraction + preset.updateFraction + preset.insertFraction + preset.deleteFraction;
    expect(sum).toBeCloseTo(1, 12);
    expect(preset.distribution).toBe(name === 'ycsb-d' ? 'latest' : 'zipf');
    expect(workloadSpec(name).distribution).toBe(preset.distribution);
  });

  it.each(workloadNames)('%s issues its get fraction within tolerance', (name: WorkloadName) => {
    const count = 100_000;
    const ops = sample(new Workload(workloadSpec(name, { keys: 1000, seed: 11 })), count);
    const gets = ops.filter((op) => op.kind === 'get').length / count;
    const expected = workloadPresets[name].readFraction;
    // Four standard deviations of a binomial proportion (0 for the read-only mixes).
    const tolerance = 4 * Math.sqrt((expected * (1 - expected)) / count);
    expect(Math.abs(gets - expected)).toBeLessThanOrEqual(tolerance);
  });

  it('gives 0.95 exactly 5% puts in expectation, not the original 6 in 101', () => {
    const ops = sample(new Workload(workloadSpec('read-mostly', { keys: 10, seed: 2 })), 200_000);
    const puts = ops.filter((op) => op.kind === 'put').length / ops.length;
    expect(puts).toBeGreaterThan(0.0485);
    expect(puts).toBeLessThan(0.0515);
  });
});

describe('Workload', () => {
  it('is deterministic for a seed', () => {
    const spec = workloadSpec('write-heavy', { keys: 10_000, seed: 5 });
    expect(sample(new Workload(spec), 500)).toEqual(sample(new Workload(spec), 500));
    expect(sample(new Workload({ ...spec, seed: 6 }), 500)).not.toEqual(
      sample(new Workload(spec), 500),
    );
  });

  it('draws the same keys whatever the mix', () => {
    const keysOf = (name: WorkloadName): number[] =>
      sample(new Workload(workloadSpec(name, { keys: 10_000, seed: 8 })), 300).map(
        (op) => op.keyIndex,
      );
    expect(keysOf('read-only')).toEqual(keysOf('write-heavy'));
  });

  it('names keys with the prefix and numbers puts', () => {
    const workload = new Workload(
      workloadSpec('write-heavy', { keys: 100, seed: 1, keyPrefix: 'k:' }),
    );
    const ops = sample(workload, 200);
    for (const op of ops) expect(op.key).toBe(`k:${op.keyIndex}`);
    const versions = ops.filter((op) => op.kind === 'put').map((op) => op.version);
    expect(versions).toEqual(versions.map((_, i) => i + 1));
    expect(ops.filter((op) => op.kind === 'get').every((op) => op.version === 0)).toBe(true);
  });

  it('reuses one op object', () => {
    const workload = new Workload(workloadSpec('read-only', { keys: 100 }));
    expect(workload.nextOp()).toBe(workload.nextOp());
  });

  it('makes values of the configured size that tell writes apart', () => {
    const workload = new Workload(
      workloadSpec('write-heavy', { keys: 50, seed: 3, valueBytes: 1000 }),
    );
    const puts = sample(workload, 100).filter((op) => op.kind === 'put');
    const values = puts.map((op) => workload.valueFor(op));
    expect(values.every((value) => value.length === 1000)).toBe(true);
    expect(new Set(values.map((value) => Buffer.from(value).toString('hex'))).size).toBe(
      values.length,
    );
    const first = puts[0] as BenchOp;
    expect(readValueStamp(values[0] as Uint8Array)).toEqual({
      keyIndex: first.keyIndex,
      version: first.version,
    });
    expect(readValueStamp(workload.loadValue(17))).toEqual({ keyIndex: 17, version: 0 });
  });

  it('rejects a read fraction outside [0, 1]', () => {
    let caught: unknown;
    try {
      new Workload({ ...workloadSpec('read-only'), readFraction: 1.5 });
    } catch (err) {
      caught = err;
    }
    expect(isDinomoError(caught) && caught.code === 'INVALID_OPTION').toBe(true);
  });
});

function shareOf(ops: readonly BenchOp[], kind: OpKind): number {
  return ops.filter((op) => op.kind === kind).length / ops.length;
}

/** Four standard deviations of a binomial proportion over `count` draws. */
function tolerance(fraction: number, count: number): number {
  return 4 * Math.sqrt((fraction * (1 - fraction)) / count);
}

function invalidOption(make: () => unknown): string | null {
  try {
    make();
  } catch (err) {
    return isDinomoError(err) && err.code === 'INVALID_OPTION' ? err.message : 'other error';
  }
  return null;
}

describe('Workload mixes', () => {
  it('gives ycsb-d 4.5-5.5% inserts and the rest gets over 100k ops', () => {
    const ops = sample(new Workload(workloadSpec('ycsb-d', { keys: 1000, seed: 21 })), 100_000);
    expect(shareOf(ops, 'insert')).toBeGreaterThanOrEqual(0.045);
    expect(shareOf(ops, 'insert')).toBeLessThanOrEqual(0.055);
    expect(shareOf(ops, 'get') + shareOf(ops, 'insert')).toBe(1);
  });

  it('issues every kind of a four-way mix within tolerance', () => {
    const mix = {
      readFraction: 0.5,
      updateFraction: 0.2,
      insertFraction: 0.2,
      deleteFraction: 0.1,
    };
    const count = 100_000;
    const ops = sample(
      new Workload({ ...workloadSpec('ycsb-a', { keys: 1000, seed: 4 }), ...mix }),
      count,
    );
    const expected: [OpKind, number][] = [
      ['get', mix.readFraction],
      ['put', mix.updateFraction],
      ['insert', mix.insertFraction],
      ['delete', mix.deleteFraction],
    ];
    for (const [kind, fraction] of expected) {
      expect(Math.abs(shareOf(ops, kind) - fraction)).toBeLessThanOrEqual(
        tolerance(fraction, count),
      );
    }
  });

  it('takes the update fraction as the remainder when a spec leaves it out', () => {
    const spec = {
      name: 'custom',
      readFraction: 0.6,
      deleteFraction: 0.1,
      keys: 100,
      zipfExponent: 0.99,
      valueBytes: 10,
      seed: 3,
      scramble: false,
      keyPrefix: 'user:',
    };
    const workload = new Workload(spec);
    expect(workload.spec.updateFraction).toBeCloseTo(0.3, 12);
    expect(workload.spec.insertFraction).toBe(0);
    expect(workload.spec.distribution).toBe('zipf');
    const ops = sample(workload, 50_000);
    expect(Math.abs(shareOf(ops, 'put') - 0.3)).toBeLessThanOrEqual(tolerance(0.3, 50_000));
  });

  it('hands out insert keys beyond the loaded ones, new and in order', () => {
    const keys = 500;
    const workload = new Workload({
      ...workloadSpec('ycsb-a', { keys, seed: 9, keyPrefix: 'k:' }),
      readFraction: 0.4,
      updateFraction: 0.3,
      insertFraction: 0.3,
    });
    const ops = sample(workload, 5000);
    const inserts = ops.filter((op) => op.kind === 'insert');
    expect(inserts.length).toBeGreaterThan(1000);
    expect(inserts.map((op) => op.keyIndex)).toEqual(inserts.map((_, i) => keys + i));
    expect(inserts.every((op) => op.key === `k:${op.keyIndex}`)).toBe(true);
    expect(workload.keyCount).toBe(keys + inserts.length);
    // Zipf draws stay in the loaded key space; only `latest` reaches inserted keys.
    expect(ops.filter((op) => op.kind !== 'insert').every((op) => op.keyIndex < keys)).toBe(true);
    // Puts and inserts share one version counter; gets and deletes write nothing.
    const versions = ops.filter((op) => op.kind === 'put' || op.kind === 'insert');
    expect(versions.map((op) => op.version)).toEqual(versions.map((_, i) => i + 1));
  });

  it('draws deletes from existing keys and gives them version 0', () => {
    const workload = new Workload({
      ...workloadSpec('ycsb-a', { keys: 50, seed: 2 }),
      readFraction: 0.5,
      updateFraction: 0,
      deleteFraction: 0.5,
    });
    const deletes = sample(workload, 2000).filter((op) => op.kind === 'delete');
    expect(deletes.length).toBeGreaterThan(800);
    expect(deletes.every((op) => op.keyIndex >= 0 && op.keyIndex < 50 && op.version === 0)).toBe(
      true,
    );
    // A key may be deleted again: YCSB does not track deletes either.
    expect(new Set(deletes.map((op) => op.keyIndex)).size).toBeLessThan(deletes.length);
    expect(workload.keyCount).toBe(50);
  });
});

describe('Workload distributions', () => {
  it('makes latest favour the newest keys and follow inserts', () => {
    const keys = 1000;
    const workload = new Workload(workloadSpec('ycsb-d', { keys, seed: 13 }));
    let newestReads = 0;
    let gets = 0;
    let insertedReads = 0;
    for (let i = 0; i < 50_000; i++) {
      const op = workload.nextOp();
      if (op.kind !== 'get') continue;
      gets++;
      // The key count after a get is the one it was drawn over.
      expect(op.keyIndex).toBeLessThan(workload.keyCount);
      if (op.keyIndex === workload.keyCount - 1) newestReads++;
      if (op.keyIndex >= keys) insertedReads++;
    }
    // Rank 0 of Zipf 0.99 over 1000 to 3500 keys has 12-14% of the draws; uniform would give 0.1%.
    expect(newestReads / gets).toBeGreaterThan(0.1);
    expect(newestReads / gets).toBeLessThan(0.16);
    // With some 2500 inserts, most reads go to keys that did not exist at the start.
    expect(insertedReads / gets).toBeGreaterThan(0.5);
  });

  it('never reads inserted keys under zipf or uniform', () => {
    for (const distribution of ['zipf', 'uniform'] as const) {
      const workload = new Workload(workloadSpec('ycsb-d', { keys: 100, seed: 5, distribution }));
      const gets = sample(workload, 5000).filter((op) => op.kind === 'get');
      expect(workload.keyCount).toBeGreaterThan(150);
      expect(gets.every((op) => op.keyIndex < 100)).toBe(true);
    }
  });

  it('makes uniform the same as a Zipf exponent of 0', () => {
    const keysOf = (overrides: WorkloadOverrides): number[] =>
      sample(new Workload(workloadSpec('ycsb-b', { keys: 1000, seed: 4, ...overrides })), 500).map(
        (op) => op.keyIndex,
      );
    expect(keysOf({ distribution: 'uniform' })).toEqual(keysOf({ zipfExponent: 0 }));
    expect(keysOf({ distribution: 'uniform' })).not.toEqual(keysOf({}));
  });

  it('ignores scramble under latest', () => {
    const opsOf = (scramble: boolean): BenchOp[] =>
      sample(new Workload(workloadSpec('ycsb-d', { keys: 1000, seed: 7, scramble })), 2000);
    expect(opsOf(true)).toEqual(opsOf(false));
  });

  it('lets a preset take another distribution', () => {
    const workload = new Workload(workloadSpec('ycsb-b', { keys: 100, distribution: 'latest' }));
    expect(workload.spec.distribution).toBe('latest');
    const gets = sample(workload, 20_000).filter((op) => op.kind === 'get');
    const newest = gets.filter((op) => op.keyIndex === 99).length / gets.length;
    // Rank 0 of Zipf 0.99 over 100 keys has about 19% of the draws.
    expect(newest).toBeGreaterThan(0.17);
    expect(newest).toBeLessThan(0.21);
  });
});

describe('Workload validation', () => {
  const base = workloadSpec('ycsb-a', { keys: 100 });

  it.each([
    ['a mix summing to 0.9', { ...base, updateFraction: 0.4 }, /must be 1, got 0\.9/],
    ['a mix summing to 1.1', { ...base, insertFraction: 0.1 }, /must be 1, got 1\.1/],
    [
      'a default update over 1',
      { ...base, updateFraction: undefined, readFraction: 0.9, insertFraction: 0.2 },
      /must be 1/,
    ],
    ['a negative delete fraction', { ...base, deleteFraction: -0.1 }, /deleteFraction/],
    ['a NaN insert fraction', { ...base, insertFraction: Number.NaN }, /insertFraction/],
    [
      'an unknown distribution',
      { ...base, distribution: 'hotspot' as RequestDistribution },
      /distribution must be one of zipf, uniform, latest, got hotspot/,
    ],
  ])('rejects %s with INVALID_OPTION and changes nothing', (_label, spec, message) => {
    const specBefore = JSON.stringify(spec);
    const presetsBefore = JSON.stringify(workloadPresets);
    const caught = invalidOption(() => new Workload(spec as WorkloadSpec));
    expect(caught).toMatch(message);
    expect(invalidOption(() => resolveWorkloadSpec(spec as WorkloadSpec))).toBe(caught);
    expect(JSON.stringify(spec)).toBe(specBefore);
    expect(JSON.stringify(workloadPresets)).toBe(presetsBefore);
  });

  it('accepts a mix that sums to 1 within rounding', () => {
    const mix = {
      readFraction: 0.1,
      updateFraction: 0.2,
      insertFraction: 0.3,
      deleteFraction: 0.4,
    };
    expect(invalidOption(() => new Workload({ ...base, ...mix }))).toBeNull();
  });
});

describe('ValueFactory', () => {
  it('truncates the stamp for tiny values and allows empty ones', () => {
    expect(new ValueFactory(0).make(1, 1).length).toBe(0);
    const tiny = new ValueFactory(5).make(123, 9);
    expect(tiny.length).toBe(5);
    expect(readValueStamp(tiny)).toBeNull();
  });

  it('is deterministic', () => {
    expect(new ValueFactory(300).make(4, 77)).toEqual(new ValueFactory(300).make(4, 77));
  });

  it('rejects sizes over 1 MiB', () => {
    expect(() => new ValueFactory(1024 * 1024 + 1)).toThrow(/valueBytes/);
  });
});
