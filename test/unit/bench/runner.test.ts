import { describe, expect, it } from 'vitest';
import {
  Workload,
  loadKeys,
  readValueStamp,
  runOpenLoop,
  runWorkload,
  workloadSpec,
  type RunProgress,
  type TimelinePoint,
} from '../../../src/bench/index.js';
import { DinomoError, isDinomoError } from '../../../src/errors/index.js';
import type { Clock, TimerHandle } from '../../../src/time/index.js';
import { FakeTarget, VirtualClock, drive, type FakeOpKind } from './fakes.js';

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
        delete: (key: string | Uint8Array) =>
          new Promise<boolean>((resolve) =>
            setImmediate(() => resolve(target.data.delete(String(key)))),
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

describe('runWorkload with inserts, deletes and a warm-up', () => {
  it('sends deletes to client.delete and counts reads of deleted keys as not found', async () => {
    const kinds = new Map<FakeOpKind, number>();
    const { clock, target } = setup(100);
    await drive(clock, loadKeys(target, 100, 10, { clock }));
    target.beforeOpHook = (kind) => void kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    const workload = new Workload({
      ...workloadSpec('read-only', { keys: 100, seed: 3, valueBytes: 10 }),
      readFraction: 0.8,
      updateFraction: 0,
      deleteFraction: 0.2,
    });
    const run = await drive(
      clock,
      runWorkload(target, { durationMs: 100, concurrency: 4, workload, clock }),
    );
    expect(run.ops).toMatchObject({ puts: 0, inserts: 0 });
    expect(run.ops.deletes).toBe(kinds.get('delete'));
    expect(run.ops.deletes).toBeGreaterThan(500);
    expect(run.ops.gets + (run.ops.deletes ?? 0)).toBe(run.ops.total);
    expect(run.statsAfter.ops.deletes - run.statsBefore.ops.deletes).toBe(run.ops.deletes);
    // Deletes emptied most of the 100 keys, and gets of those found nothing.
    expect(target.data.size).toBeLessThan(50);
    expect(run.ops.getsNotFound).toBeGreaterThan(0);
    expect(run.ops.getsNotFound).toBeLessThan(run.ops.gets);
  });

  it('writes inserts as puts of new keys', async () => {
    const keys = 200;
    const { clock, target } = setup(100);
    await drive(clock, loadKeys(target, keys, 50, { clock }));
    const workload = new Workload(workloadSpec('ycsb-d', { keys, seed: 8, valueBytes: 50 }));
    const run = await drive(
      clock,
      runWorkload(target, { durationMs: 200, concurrency: 4, workload, clock }),
    );
    const inserts = run.ops.inserts ?? 0;
    expect(inserts / run.ops.total).toBeGreaterThan(0.04);
    expect(inserts / run.ops.total).toBeLessThan(0.06);
    expect(run.ops.gets + inserts).toBe(run.ops.total);
    expect(target.data.size).toBe(keys + inserts);
    expect(workload.keyCount).toBe(keys + inserts);
    const newest = target.data.get(`user:${keys + inserts - 1}`);
    expect(newest === undefined ? null : readValueStamp(newest)?.keyIndex).toBe(keys + inserts - 1);
  });

  it('runs the warm-up without recording it and starts the measured phase after it', async () => {
    const { clock, target } = setup(100);
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const ticks: RunProgress[] = [];
    const run = await drive(
      clock,
      runWorkload(target, {
        durationMs: 2000,
        warmupMs: 1000,
        concurrency: 4,
        workload,
        clock,
        onProgress: (p) => ticks.push(p),
      }),
    );
    // Only the operations started from 1 s to 3 s count: 4 loops, one op per 100 µs, for 2 s.
    expect(run.ops.total).toBe(4 * 20_000);
    expect(run.latencyUs.count).toBe(run.ops.total);
    expect(run.elapsedUs).toBe(2_000_000);
    expect(run.timeline.map((p) => p.second)).toEqual([0, 1]);
    // The snapshot was taken as the warm-up ended: its operations are in it already.
    expect(run.statsBefore.ops.total).toBeGreaterThanOrEqual(4 * 9_999);
    const measured = run.statsAfter.ops.total - run.statsBefore.ops.total;
    expect(measured).toBeGreaterThanOrEqual(run.ops.total);
    expect(measured).toBeLessThanOrEqual(run.ops.total + 4);
    // Progress counts from the start of the measured phase.
    expect(ticks[0]?.elapsedMs).toBe(250);
    expect(clock.nowUs()).toBe(3_000_000);
  });

  it('does not record the errors of the warm-up', async () => {
    const { clock, target } = setup(100);
    // Every other warm-up op fails at once; the others take virtual time, so the loops move on.
    let warmupOps = 0;
    target.beforeOpHook = () => {
      if (clock.nowUs() < 50_000 && warmupOps++ % 2 === 0) {
        throw new DinomoError('TIMEOUT', 'warming up');
      }
    };
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = await drive(
      clock,
      runWorkload(target, {
        durationMs: 50,
        warmupMs: 50,
        concurrency: 2,
        workload,
        clock,
        maxErrors: 1_000_000,
      }),
    );
    expect(warmupOps).toBeGreaterThan(500);
    expect(run.errors).toEqual({});
    expect(run.firstErrorMessage).toBeNull();
    expect(run.timeline.reduce((sum, p) => sum + p.errors, 0)).toBe(0);
    expect(run.ops.total).toBe(2 * 500);
  });
});

/** A clock whose timers all fire `lagUs` late, like an event loop that is kept busy. */
class LaggingClock implements Clock {
  constructor(
    private readonly inner: VirtualClock,
    private readonly lagUs: number,
  ) {}

  nowUs(): number {
    return this.inner.nowUs();
  }

  setTimer(delayUs: number, callback: () => void): TimerHandle {
    return this.inner.setTimer(delayUs + this.lagUs, callback);
  }
}

describe('runOpenLoop', () => {
  it('issues rate x duration operations on schedule', async () => {
    const { clock, target } = setup(100);
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const periods: TimelinePoint[] = [];
    const run = await drive(
      clock,
      runOpenLoop(target, {
        durationMs: 1000,
        ratePerSec: 10_000,
        workload,
        clock,
        reportPeriodMs: 500,
        onPeriod: (point) => periods.push(point),
      }),
    );
    expect(run.ops.total).toBe(10_000);
    expect(run.targetRatePerSec).toBe(10_000);
    expect(run.dropped).toBe(0);
    expect(run.abandoned).toBe(0);
    expect(run.latencyUs).toMatchObject({ p50: 100, max: 100, count: 10_000 });
    // One op every 100 µs taking 100 µs: at most two overlap, unlike a closed loop of 64.
    expect(target.maxInFlight).toBeLessThanOrEqual(2);
    expect(run.elapsedUs).toBe(1_000_000);
    expect(periods.map((p) => p.second)).toEqual([0, 0.5]);
    expect(run.statsAfter.ops.total - run.statsBefore.ops.total).toBe(10_000);
  });

  it('measures latency from the scheduled start, so a late issue is not hidden', async () => {
    const clock = new VirtualClock();
    const target = new FakeTarget({ clock, latencyUs: 100 });
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = await drive(
      clock,
      runOpenLoop(target, {
        durationMs: 100,
        ratePerSec: 1000,
        workload,
        clock: new LaggingClock(clock, 5000),
      }),
    );
    // Every tick comes 5 ms late and issues the 6 ops due by then: the first of them waited 5 ms.
    // Timed from the issue, every op would show the target's 100 µs.
    expect(run.ops.total).toBe(100);
    expect(run.latencyUs.max).toBe(5100);
    expect(run.latencyUs.p50).toBeGreaterThanOrEqual(2000);
    expect(run.latencyUs.p50).toBeLessThanOrEqual(3200);
  });

  it('drops operations due while maxInFlight are in flight, instead of queueing them', async () => {
    // From 0.5 s on the target answers nothing: 50 ops fill the bound, and every later one drops.
    const { clock, target } = setup(100, { hangAfterUs: 500_000 });
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = await drive(
      clock,
      runOpenLoop(target, {
        durationMs: 1000,
        ratePerSec: 10_000,
        maxInFlight: 50,
        workload,
        clock,
        drainTimeoutMs: 10,
      }),
    );
    expect(run.ops.total).toBe(5000);
    expect(run.abandoned).toBe(50);
    expect(run.dropped).toBe(10_000 - 5000 - 50);
  });

  it('does not record the warm-up', async () => {
    const { clock, target } = setup(100);
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = await drive(
      clock,
      runOpenLoop(target, {
        durationMs: 1000,
        warmupMs: 500,
        ratePerSec: 10_000,
        workload,
        clock,
      }),
    );
    expect(run.ops.total).toBe(10_000);
    expect(run.elapsedUs).toBe(1_000_000);
    expect(run.timeline.map((p) => p.second)).toEqual([0]);
    expect(run.statsBefore.ops.total).toBeGreaterThanOrEqual(4999);
    expect(run.statsBefore.ops.total).toBeLessThanOrEqual(5000);
    expect(clock.nowUs()).toBe(1_500_000);
  });

  it('stops early and throws once maxErrors operations failed', async () => {
    const { clock, target } = setup(100, {
      beforeOp: () => {
        throw new DinomoError('CLOSED', 'test');
      },
    });
    const workload = new Workload(workloadSpec('read-only', { keys: 10 }));
    const run = runOpenLoop(target, {
      durationMs: 10_000,
      ratePerSec: 10_000,
      workload,
      clock,
      maxErrors: 50,
    });
    const error: unknown = await drive(clock, run).catch((err: unknown) => err);
    expect(isDinomoError(error) && error.code).toBe('CLOSED');
    expect(clock.nowUs()).toBeLessThan(10_000);
  });

  it('runs inserts and deletes through the same client as the closed loop', async () => {
    const { clock, target } = setup(100);
    await drive(clock, loadKeys(target, 100, 10, { clock }));
    const workload = new Workload({
      ...workloadSpec('ycsb-d', { keys: 100, seed: 6, valueBytes: 10 }),
      readFraction: 0.7,
      insertFraction: 0.2,
      deleteFraction: 0.1,
    });
    const run = await drive(
      clock,
      runOpenLoop(target, { durationMs: 500, ratePerSec: 4000, workload, clock }),
    );
    const { gets, puts, inserts = 0, deletes = 0, total } = run.ops;
    expect(total).toBe(2000);
    expect(gets + puts + inserts + deletes).toBe(total);
    expect(inserts).toBeGreaterThan(300);
    expect(deletes).toBeGreaterThan(100);
    expect(run.statsAfter.ops.deletes - run.statsBefore.ops.deletes).toBe(deletes);
    expect(workload.keyCount).toBe(100 + inserts);
  });
});
