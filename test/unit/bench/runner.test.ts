import { describe, expect, it } from 'vitest';
import {
  Workload,
  loadKeys,
  readValueStamp,
  runWorkload,
  workloadSpec,
  type RunProgress,
  type TimelinePoint,
} from '../../../src/bench/index.js';
import { DinomoError, isDinomoError } from '../../../src/errors/index.js';
import { FakeTarget, VirtualClock, drive } from './fakes.js';

function setup(latencyUs = 100, extra: Partial<ConstructorParameters<typeof FakeTarget>[0]> = {}) {
  const clock = new VirtualClock();
  const target = new FakeTarget({ clock, latencyUs, ...extra });
  return { clock, target };
}

describe('loadKeys', () => {
  it('writes every key once with at most `concurrency` puts in flight', async () => {
    const { clock, target } = setup();
    const progress: number[] = [];
    const result = await drive(
      clock,
      loadKeys(target, 1000, 64, {
        concurrency: 8,
        clock,
        onProgress: (loaded) => progress.push(loaded),
      }),
    );
    expect(result.keys).toBe(1000);
    expect(target.data.size).toBe(1000);
    expect(target.maxInFlight).toBe(8);
    expect(progress.at(-1)).toBe(1000);
    // 1000 puts, 8 at a time, 100 µs each.
    expect(result.elapsedUs).toBe(125 * 100);
    expect(readValueStamp(target.data.get('user:999') as Uint8Array)).toEqual({
      keyIndex: 999,
      version: 0,
    });
  });

  it('retries retriable errors with backoff', async () => {
    let failures = 3;
    const { clock, target } = setup(100, {
      beforeOp: () => {
        if (failures-- > 0) throw new DinomoError('OVERLOADED', 'test');
      },
    });
    const result = await drive(
      clock,
      loadKeys(target, 10, 8, { concurrency: 1, clock, retryBackoffUs: 50 }),
    );
    expect(result.retries).toBe(3);
    expect(target.data.size).toBe(10);
  });

  it('stops at a non-retriable error and throws it after the puts in flight finish', async () => {
    const { clock, target } = setup(100, {
      beforeOp: (_kind, key) => {
        if (key === 'user:50') throw new DinomoError('REGION_FULL', 'test');
      },
    });
    const load = loadKeys(target, 1000, 8, { concurrency: 4, clock, maxRetries: 0 });
    const error: unknown = await drive(clock, load).catch((err: unknown) => err);
    expect(isDinomoError(error) && error.code).toBe('REGION_FULL');
    expect(target.data.size).toBeLessThan(60);
    expect(target.inFlight).toBe(0);
  });
});

describe('runWorkload', () => {
  it('runs a closed loop for the duration and records latency and a timeline', async () => {
    const { clock, target } = setup(100);
    await drive(clock, loadKeys(target, 500, 100, { clock }));
    const workload = new Workload(
      workloadSpec('read-mostly', { keys: 500, seed: 4, valueBytes: 100 }),
    );
    const ticks: RunProgress[] = [];
    const run = await drive(
      clock,
      runWorkload(target, {
        durationMs: 3000,
        concurrency: 4,
        workload,
        clock,
        onProgress: (p) => ticks.push(p),
      }),
    );
    // 4 loops each finishing an op every 100 µs for 3 s.
    expect(run.ops.total).toBe(4 * 30_000);
    expect(run.ops.gets + run.ops.puts).toBe(run.ops.total);
    expect(run.ops.puts / run.ops.total).toBeCloseTo(0.05, 2);
    expect(run.ops.getsNotFound).toBe(0);
    expect(run.errors).toEqual({});
    expect(run.latencyUs).toMatchObject({ p50: 100, p99: 100, max: 100, count: run.ops.total });
    expect(run.elapsedUs).toBe(3_000_000);
    expect(run.timeline.map((p) => p.second)).toEqual([0, 1, 2]);
    // A second is [start, start + 1 s): the ops finishing exactly on a boundary count for the next one.
    for (const point of run.timeline) {
      expect(Math.abs(point.opsPerSec - 40_000)).toBeLessThanOrEqual(4);
      expect(point).toMatchObject({ p50Us: 100, p99Us: 100, errors: 0 });
    }
    expect(ticks.length).toBeGreaterThanOrEqual(11);
    expect(run.statsAfter.ops.total - run.statsBefore.ops.total).toBe(run.ops.total);
  });

  it('reports each period as it closes, a stalled one on time too', async () => {
    // Operations issued from 1.5 s on never finish: the last periods see nothing complete.
    const { clock, target } = setup(100, { hangAfterUs: 1_500_000 });
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const periods: (TimelinePoint & { atUs: number })[] = [];
    const run = await drive(
      clock,
      runWorkload(target, {
        durationMs: 3000,
        concurrency: 2,
        workload,
        clock,
        drainTimeoutMs: 10,
        reportPeriodMs: 500,
        onPeriod: (point) => periods.push({ ...point, atUs: clock.nowUs() }),
      }),
    );
    expect(periods.map((p) => p.second)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    // A period closes at its first completion after it or, in a stall, on a timer 1 ms past its end;
    // the last one closes with the run, after the drain.
    expect(periods.map((p) => p.atUs)).toEqual([
      500_000, 1_000_000, 1_500_000, 2_001_000, 2_501_000, 3_010_000,
    ]);
    // 2 loops, 100 µs per op; the 2 ops finishing exactly at 0.5 s count for the next period.
    expect(periods[0]).toMatchObject({ opsPerSec: 19_996, p50Us: 100, p99Us: 100, errors: 0 });
    expect(periods.slice(4).map((p) => p.opsPerSec)).toEqual([0, 0]);
    const periodOps = periods.reduce((sum, p) => sum + p.opsPerSec * 0.5, 0);
    expect(Math.round(periodOps)).toBe(run.ops.total);
    // The per-second timeline is unchanged by the periods.
    expect(run.timeline.map((p) => p.second)).toEqual([0, 1, 2]);
  });

  it('is deterministic on a virtual clock', async () => {
    const once = async () => {
      const { clock, target } = setup(70);
      await drive(clock, loadKeys(target, 100, 10, { clock }));
      const workload = new Workload(
        workloadSpec('write-heavy', { keys: 100, seed: 12, valueBytes: 10 }),
      );
      const run = await drive(
        clock,
        runWorkload(target, { durationMs: 200, concurrency: 5, workload, clock }),
      );
      return {
        ops: run.ops,
        data: [...target.data.entries()].map(([k, v]) => [k, readValueStamp(v)]),
      };
    };
    expect(await once()).toEqual(await once());
  });

  it('counts errors by code and keeps going below the limit', async () => {
    let n = 0;
    const { clock, target } = setup(100, {
      beforeOp: () => {
        n++;
        if (n % 10 === 0) throw new DinomoError('TIMEOUT', 'test');
        if (n % 25 === 0) throw new Error('plain');
      },
    });
    const workload = new Workload(workloadSpec('read-only', { keys: 10, seed: 1 }));
    const run = await drive(
      clock,
      runWorkload(target, {
        durationMs: 100,
        concurrency: 4,
        workload,
        clock,
        maxErrors: 1_000_000,
      }),
    );
    expect(run.errors['TIMEOUT']).toBeGreaterThan(0);
    expect(run.errors['INTERNAL']).toBeGreaterThan(0);
    expect(run.firstErrorMessage).toMatch(/TIMEOUT/);
    const errorCount = (run.errors['TIMEOUT'] ?? 0) + (run.errors['INTERNAL'] ?? 0);
    expect(run.timeline.reduce((sum, p) => sum + p.errors, 0)).toBe(errorCount);
    // Nothing was loaded, so every successful get found nothing.
    expect(run.ops.getsNotFound).toBe(run.ops.gets);
  });

  it('stops early and throws once maxErrors operations failed', async () => {
    const { clock, target } = setup(100, {
      beforeOp: () => {
        throw new DinomoError('CLOSED', 'test');
      },
    });
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = runWorkload(target, {
      durationMs: 10_000,
      concurrency: 4,
      workload,
      clock,
      maxErrors: 50,
    });
    const error: unknown = await drive(clock, run).catch((err: unknown) => err);
    expect(isDinomoError(error) && error.code).toBe('CLOSED');
    expect(clock.nowUs()).toBeLessThan(1000);
  });

  it('abandons operations that do not finish within the drain timeout', async () => {
    const { clock, target } = setup(100, { hangAfterUs: 50_000 });
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = await drive(
      clock,
      runWorkload(target, { durationMs: 100, concurrency: 3, workload, clock, drainTimeoutMs: 20 }),
    );
    expect(run.abandoned).toBe(3);
    expect(run.ops.total).toBe(3 * 500);
    expect(run.elapsedUs).toBe(120_000);
    expect(run.timeline).toHaveLength(1);
  });

  it('runs on the real clock for a short duration', async () => {
    const target = new FakeTarget({ clock: new VirtualClock(), latencyUs: 0 });
    // The fake answers through the virtual clock, so use a target that answers on the event loop.
    const realTarget = {
      client: () => ({
        put: (key: string | Uint8Array, value: string | Uint8Array) =>
          new Promise<void>((resolve) =>
            setImmediate(() => resolve(void target.data.set(String(key), value as Uint8Array))),
          ),
        get: (key: string | Uint8Array) =>
          new Promise<Uint8Array | null>((resolve) =>
            setImmediate(() => resolve(target.data.get(String(key)) ?? null)),
          ),
      }),
      stats: () => target.stats(),
    };
    const workload = new Workload(workloadSpec('ycsb-a', { keys: 100, valueBytes: 16 }));
    const run = await runWorkload(realTarget, {
      durationMs: 200,
      concurrency: 8,
      workload,
      progressIntervalMs: 50,
    });
    expect(run.ops.total).toBeGreaterThan(100);
    expect(run.elapsedUs).toBeGreaterThanOrEqual(200_000);
    expect(run.elapsedUs).toBeLessThan(2_000_000);
    expect(run.latencyUs.p50).toBeGreaterThanOrEqual(0);
  });
});
