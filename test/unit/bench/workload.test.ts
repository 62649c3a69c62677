import { describe, expect, it } from 'vitest';
import {
  ValueFactory,
  Workload,
  readValueStamp,
  workloadNames,
  workloadPresets,
  workloadSpec,
  type BenchOp,
  type WorkloadName,
} from '../../../src/bench/index.js';
import { isDinomoError } from '../../../src/errors/index.js';

function sample(workload: Workload, count: number): BenchOp[] {
  return Array.from({ length: count }, () => ({ ...workload.nextOp() }));
}

describe('workload presets', () => {
  it('has the six named mixes', () => {
    expect(workloadNames.sort()).toEqual(
      ['read-mostly', 'read-only', 'write-heavy', 'ycsb-a', 'ycsb-b', 'ycsb-c'].sort(),
    );
    expect(workloadPresets['read-mostly'].readFraction).toBe(0.95);
    expect(workloadPresets['ycsb-a'].readFraction).toBe(0.5);
    expect(workloadPresets['ycsb-c'].readFraction).toBe(1);
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
