import { describe, expect, it } from 'vitest';
import { detectDips, type DipSample } from '../../../src/bench/dips.js';

/** Buckets of `bucketMs` from 0, with the throughputs given. */
function timeline(values: readonly number[], bucketMs = 100): DipSample[] {
  return values.map((opsPerSec, i) => ({ second: (i * bucketMs) / 1000, opsPerSec }));
}

const options = { bucketMs: 100, fraction: 0.5, baselineBuckets: 4 };

describe('detectDips', () => {
  it('finds one dip after an event: start, length and minimum, relative to the event', () => {
    // Event at 0.4 s; buckets 0.5-0.7 s are below half of the baseline (100).
    const samples = timeline([100, 100, 100, 100, 90, 40, 10, 30, 95, 100]);
    const [result] = detectDips(samples, [{ atSec: 0.4, label: 'add KN 2' }], options);
    expect(result?.baselineOpsPerSec).toBe(100);
    expect(result?.thresholdOpsPerSec).toBe(50);
    expect(result?.baselineBucketCount).toBe(4);
    expect(result?.dips).toEqual([
      { startMs: 100, lengthMs: 300, minOpsPerSec: 10, reachesWindowEnd: false },
    ]);
    expect(result?.windowEndMs).toBe(600);
  });

  it('takes the median of the buckets before the event, so one outlier does not move it', () => {
    const samples = timeline([100, 5, 100, 1000, 100, 60, 49, 100]);
    const [result] = detectDips(samples, [{ atSec: 0.5, label: 'e' }], options);
    // Buckets 0.1-0.4 s: 5, 100, 1000, 100: the median is 100.
    expect(result?.baselineOpsPerSec).toBe(100);
    expect(result?.dips.map((d) => d.startMs)).toEqual([100]);
  });

  it('counts only buckets strictly below the threshold', () => {
    const samples = timeline([100, 100, 100, 100, 50, 49.9, 50, 100]);
    const [result] = detectDips(samples, [{ atSec: 0.4, label: 'e' }], options);
    expect(result?.dips).toEqual([
      { startMs: 100, lengthMs: 100, minOpsPerSec: 49.9, reachesWindowEnd: false },
    ]);
  });

  it('reports every separate dip, and one that lasts to the end of the run', () => {
    const samples = timeline([100, 100, 100, 100, 10, 100, 20, 30]);
    const [result] = detectDips(samples, [{ atSec: 0.4, label: 'e' }], options);
    expect(result?.dips).toEqual([
      { startMs: 0, lengthMs: 100, minOpsPerSec: 10, reachesWindowEnd: false },
      { startMs: 200, lengthMs: 200, minOpsPerSec: 20, reachesWindowEnd: true },
    ]);
  });

  it('never starts a dip before the event: an event inside a bucket cuts the first bucket', () => {
    const samples = timeline([100, 100, 100, 100, 0, 0, 100]);
    const [result] = detectDips(samples, [{ atSec: 0.35, label: 'e' }], options);
    // The bucket 0.3-0.4 s holds the event; it is not below, the dip starts at 0.4 s.
    expect(result?.baselineBucketCount).toBe(3);
    expect(result?.dips).toEqual([
      { startMs: 50, lengthMs: 200, minOpsPerSec: 0, reachesWindowEnd: false },
    ]);
    const [cut] = detectDips(
      timeline([100, 100, 100, 0, 0, 100]),
      [{ atSec: 0.35, label: 'e' }],
      options,
    );
    expect(cut?.dips).toEqual([
      { startMs: 0, lengthMs: 150, minOpsPerSec: 0, reachesWindowEnd: false },
    ]);
  });

  it('ends each event window at the next event, which owns the bucket it falls in', () => {
    const samples = timeline([100, 100, 100, 100, 10, 10, 10, 100, 100, 100, 100, 10, 100]);
    const results = detectDips(
      samples,
      // Given out of order: they are sorted.
      [
        { atSec: 0.6, label: 'fail KN 1' },
        { atSec: 0.4, label: 'add KN 2' },
      ],
      options,
    );
    expect(results.map((r) => r.event.label)).toEqual(['add KN 2', 'fail KN 1']);
    expect(results[0]?.dips).toEqual([
      { startMs: 0, lengthMs: 200, minOpsPerSec: 10, reachesWindowEnd: true },
    ]);
    expect(results[0]?.windowEndMs).toBe(200);
    // The second event's baseline is the 4 buckets before it: 100, 100, 10, 10.
    expect(results[1]?.baselineOpsPerSec).toBe(55);
    expect(results[1]?.dips).toEqual([
      { startMs: 0, lengthMs: 100, minOpsPerSec: 10, reachesWindowEnd: false },
      { startMs: 500, lengthMs: 100, minOpsPerSec: 10, reachesWindowEnd: false },
    ]);
  });

  it('has no baseline (and no dips) for an event before the first bucket ended, or after zeros', () => {
    const [early] = detectDips(timeline([0, 0, 100]), [{ atSec: 0.05, label: 'e' }], options);
    expect(early?.baselineOpsPerSec).toBeNull();
    expect(early?.thresholdOpsPerSec).toBeNull();
    expect(early?.dips).toEqual([]);
    const [zero] = detectDips(timeline([0, 0, 0, 0]), [{ atSec: 0.2, label: 'e' }], options);
    expect(zero?.baselineOpsPerSec).toBe(0);
    expect(zero?.dips).toEqual([]);
  });

  it('works with other bucket sizes and no events', () => {
    const samples = timeline([100, 100, 10, 100], 1000);
    const [result] = detectDips(samples, [{ atSec: 2, label: 'e' }], {
      ...options,
      bucketMs: 1000,
    });
    expect(result?.dips).toEqual([
      { startMs: 0, lengthMs: 1000, minOpsPerSec: 10, reachesWindowEnd: false },
    ]);
    expect(detectDips(samples, [], { ...options, bucketMs: 1000 })).toEqual([]);
  });

  it('refuses bad options', () => {
    const samples = timeline([100]);
    expect(() => detectDips(samples, [], { ...options, bucketMs: 0 })).toThrow(RangeError);
    expect(() => detectDips(samples, [], { ...options, fraction: 0 })).toThrow(/fraction/);
    expect(() => detectDips(samples, [], { ...options, fraction: 1.5 })).toThrow(/fraction/);
    expect(() => detectDips(samples, [], { ...options, baselineBuckets: 0 })).toThrow(/baseline/);
  });
});
