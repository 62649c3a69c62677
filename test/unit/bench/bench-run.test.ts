import { describe, expect, it } from 'vitest';
import {
  StatsTimeline,
  benchDefaults,
  benchTimelineChart,
  formatBenchReport,
  median,
  runBench,
  type BenchCluster,
  type BenchClusterClass,
  type BenchIo,
  type BenchRunOptions,
  type BenchStats,
  type DemoProgress,
  type TimelinePoint,
} from '../../../src/bench/index.js';
import { DinomoError } from '../../../src/errors/index.js';
import {
  FakeTarget,
  VirtualClock,
  drive,
  fakeClusterClass,
  type FakeTargetOptions,
} from './fakes.js';

const options: BenchRunOptions = {
  ...benchDefaults,
  keys: 200,
  valueBytes: 100,
  durationSec: 0.5,
  warmupSec: 0.1,
  concurrency: 4,
  seed: 3,
};

function quietIo(clock: VirtualClock, logs: string[] = []): BenchIo {
  return { log: (line) => logs.push(line), progress: null, clock };
}

describe('runBench', () => {
  it('starts the cluster in the mode, loads, runs, reports every field and stops it', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock, latencyUs: 50 });
    const logs: string[] = [];
    const report = await drive(
      clock,
      runBench(
        clusterClass,
        { ...options, kns: 2, regionBytes: 64 * 1024 * 1024 },
        quietIo(clock, logs),
      ),
    );
    expect(clusterClass.started).toEqual([
      { mode: 'dinomo', kns: 2, threadsPerKn: 2, regionBytes: 64 * 1024 * 1024 },
    ]);
    const cluster = clusterClass.instances[0];
    expect(cluster?.stopped).toBe(true);
    expect(cluster?.data.size).toBe(200);
    expect(report).toMatchObject({
      mode: 'dinomo',
      workload: 'read-mostly',
      kns: 2,
      threadsPerKn: 2,
      loop: 'closed',
      dropped: 0,
      errors: {},
      load: { keys: 200 },
    });
    // 4 loops of 50 µs operations for 0.5 s; the warm-up's operations are not counted.
    expect(report.ops.total).toBe(40_000);
    expect(report.opsPerSec).toBe(80_000);
    expect(report.durationSec).toBe(0.5);
    expect(report.latencyUs).toEqual({ p50: 50, p99: 50, p999: 50, max: 50, mean: 50 });
    // Every key was read in the warm-up, so the misses of the run are reads after a put (5%).
    expect(report.hitRatio.value).toBeGreaterThan(0.9);
    expect(report.hitRatio.miss).toBeGreaterThan(0);
    expect(report.hitRatio.value + report.hitRatio.miss).toBeCloseTo(1, 3);
    expect(report.hitRatio.shortcut).toBe(0);
    expect(report.missCostRts).toBe(3);
    expect(report.rtsPerOp).toBeGreaterThan(0.05);
    expect(report.rtsPerOp).toBeLessThan(0.5);
    expect(report.dpmBytesUsed).toBe(200 * 100);
    expect(report.repetitions).toHaveLength(1);
    expect(report.repetitions[0]?.opsPerSec).toBe(80_000);
    expect(report.config).toMatchObject({
      mode: 'dinomo',
      distribution: 'zipf',
      keyOrder: 'scrambled',
      scramble: true,
      warmupSec: 0.1,
      loop: 'closed',
      ratePerSec: null,
      maxInFlight: null,
      seed: 3,
    });
    expect(logs.join('\n')).toMatch(/mode dinomo, 2 KN x 2 threads \(seed 3\)/);
  });

  it('runs each repetition on the loaded cluster and reports the median ops/s', async () => {
    const clock = new VirtualClock();
    const fakeOptions: FakeTargetOptions = { clock, latencyUs: 100 };
    const clusterClass = fakeClusterClass(fakeOptions);
    // Each repetition is slower or faster than the last: 40k, 80k, then 20k ops/s.
    const nextLatency = [50, 200];
    const io: BenchIo = {
      log: (line) => {
        if (/^repetition \d\/3/.test(line)) fakeOptions.latencyUs = nextLatency.shift() ?? 100;
      },
      progress: null,
      clock,
    };
    const report = await drive(
      clock,
      runBench(clusterClass, { ...options, durationSec: 0.2, warmupSec: 0.05, repetitions: 3 }, io),
    );
    expect(clusterClass.started).toHaveLength(1);
    expect(report.repetitions.map((r) => r.opsPerSec)).toEqual([40_000, 80_000, 20_000]);
    expect(report.repetitions.map((r) => r.latencyUs.p50)).toEqual([100, 50, 200]);
    expect(report.opsPerSec).toBe(40_000);
    // The latencies of all three, merged: 8000 at 100 µs, 16000 at 50, 4000 at 200.
    expect(report.ops.total).toBe(28_000);
    expect(report.latencyUs.p50).toBe(50);
    expect(report.latencyUs.max).toBe(200);
    expect(report.latencyUs.p99).toBe(200);
    expect(report.durationSec).toBeCloseTo(0.6, 6);
    expect(new Set(report.timeline.map((p) => p.repetition))).toEqual(new Set([1, 2, 3]));
    expect(report.config.repetitions).toBe(3);
  });

  it('gives every second of the timeline its round trips and hit fractions', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock, latencyUs: 100 });
    const report = await drive(
      clock,
      runBench(
        clusterClass,
        { ...options, durationSec: 2, warmupSec: 0, concurrency: 2, workload: 'write-heavy' },
        quietIo(clock),
      ),
    );
    expect(report.timeline.map((p) => p.second)).toEqual([0, 1]);
    for (const point of report.timeline) {
      expect(point.repetition).toBe(1);
      // A completion on the boundary of a second counts in the next one.
      expect(Math.abs(point.opsPerSec - 20_000)).toBeLessThanOrEqual(10);
      // Half the operations are puts (1 RT), and many gets follow a put and miss (3 RTs).
      expect(point.rtsPerOp).toBeGreaterThan(0.5);
      expect(point.rtsPerOp).toBeLessThan(3);
      expect(point.hits.miss).toBeGreaterThan(0.1);
      expect(point.hits.value).toBeGreaterThan(0.1);
      expect(point.hits.value + point.hits.miss).toBeCloseTo(1, 3);
      expect(point.hits.log).toBe(0);
    }
    // Without a warm-up the first second has the first read of every key: more misses.
    const [first, second] = report.timeline;
    expect(first?.hits.miss).toBeGreaterThan(second?.hits.miss ?? 1);
  });

  it('samples a target whose stats() returns a promise', async () => {
    const clock = new VirtualClock();
    const target = new FakeTarget({ clock, latencyUs: 100 });
    const asyncTarget: BenchCluster = {
      client: () => target,
      stats: () => Promise.resolve(target.stats()),
      stop: () => target.stop(),
    };
    const clusterClass: BenchClusterClass = { start: () => Promise.resolve(asyncTarget) };
    const report = await drive(
      clock,
      runBench(clusterClass, { ...options, durationSec: 1.5, warmupSec: 0.2 }, quietIo(clock)),
    );
    expect(report.timeline).toHaveLength(2);
    for (const point of report.timeline) {
      expect(point.hits.value + point.hits.miss).toBeCloseTo(1, 3);
      expect(point.rtsPerOp).toBeGreaterThan(0);
    }
    expect(target.stopped).toBe(true);
  });

  it('runs the open loop when a rate is given', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock, latencyUs: 50 });
    const report = await drive(
      clock,
      runBench(
        clusterClass,
        { ...options, ratePerSec: 1000, maxInFlight: 16, durationSec: 0.5 },
        quietIo(clock),
      ),
    );
    expect(report.loop).toBe('open');
    expect(report.config).toMatchObject({ loop: 'open', ratePerSec: 1000, maxInFlight: 16 });
    // A closed loop of 4 would have done 80,000 ops/s; the open loop keeps to its rate.
    expect(report.ops.total).toBe(500);
    expect(Math.abs(report.opsPerSec - 1000)).toBeLessThanOrEqual(10);
    expect(report.dropped).toBe(0);
    expect(report.repetitions[0]?.dropped).toBe(0);
    expect(clusterClass.instances[0]?.maxInFlight).toBeLessThanOrEqual(4);
  });

  it('passes the mode to the cluster and lets its refusal through, loading nothing', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({
      clock,
      startError: new DinomoError('NOT_SUPPORTED', 'mode "clover" is not available yet'),
    });
    const failure = await runBench(
      clusterClass,
      { ...options, mode: 'clover' },
      quietIo(clock),
    ).catch((err: unknown) => err);
    expect(failure).toMatchObject({ code: 'NOT_SUPPORTED' });
    expect(clusterClass.started).toEqual([{ mode: 'clover', kns: 1, threadsPerKn: 2 }]);
    expect(clusterClass.instances).toEqual([]);
  });

  it('rejects bad options before starting anything', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock });
    await expect(
      runBench(clusterClass, { ...options, repetitions: 0 }, quietIo(clock)),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(runBench(clusterClass, { ...options, zipf: -1 }, quietIo(clock))).rejects.toThrow(
      /Zipf/,
    );
    expect(clusterClass.started).toEqual([]);
  });

  it('stops the cluster and rethrows when the run fails', async () => {
    const clock = new VirtualClock();
    const progress: string[] = [];
    const clusterClass = fakeClusterClass({
      clock,
      beforeOp: (kind) => {
        if (kind === 'get') throw new DinomoError('WORKER_FAILED', 'test');
      },
    });
    const io: BenchIo = { ...quietIo(clock), progress: recordingProgress(progress) };
    const failure = await drive(clock, runBench(clusterClass, options, io)).catch(
      (err: unknown) => err,
    );
    expect(failure).toMatchObject({ code: 'WORKER_FAILED' });
    expect(clusterClass.instances[0]?.stopped).toBe(true);
    expect(progress.at(-1)).toBe('stop');
  });

  it('draws the load and then the run over every repetition', async () => {
    const clock = new VirtualClock();
    const progress: string[] = [];
    const io: BenchIo = { ...quietIo(clock), progress: recordingProgress(progress) };
    await drive(
      clock,
      runBench(
        fakeClusterClass({ clock, latencyUs: 100 }),
        { ...options, repetitions: 2, durationSec: 0.25 },
        io,
      ),
    );
    expect(progress.filter((e) => !e.startsWith('update'))).toEqual([
      'start load 200',
      'stop',
      'start run 0.5',
      'stop',
    ]);
    expect(progress).toContain('update 0.5');
  });
});

function recordingProgress(events: string[]): DemoProgress {
  return {
    start: (phase, total) => events.push(`start ${phase} ${total}`),
    update: (value) => events.push(`update ${value}`),
    stop: () => events.push('stop'),
  };
}

describe('the summary and the chart', () => {
  it('prints the key numbers in the summary table and the timeline', async () => {
    const clock = new VirtualClock();
    const report = await drive(
      clock,
      runBench(
        fakeClusterClass({ clock, latencyUs: 100 }),
        { ...options, repetitions: 2, durationSec: 0.25 },
        quietIo(clock),
      ),
    );
    const text = formatBenchReport(report);
    expect(text).toMatch(/^mode {9}dinomo$/m);
    expect(text).toMatch(/^workload {5}read-mostly \(95% get\), 200 keys/m);
    expect(text).toMatch(/^cluster {6}1 KN x 2 threads/m);
    expect(text).toMatch(/^loop {9}closed, 4 in flight$/m);
    expect(text).toMatch(/^ops\/s {8}40,000 \(median of 2: 40,000, 40,000\)$/m);
    expect(text).toMatch(/^latency µs {3}p50 100 {3}p99 100 {3}p99\.9 100/m);
    expect(text).toContain(`RTs/op       ${report.rtsPerOp.toFixed(2)}`);
    expect(text).toMatch(/^gets served {2}value \d+\.\d% {3}shortcut 0\.0% {3}log 0\.0% {3}miss/m);
    expect(text).toMatch(/^miss cost {4}3\.00 RTs$/m);
    expect(text).toMatch(/^DPM used {5}19\.5 KiB$/m);
    expect(text).toMatch(/^errors {7}none$/m);
    // The per-repetition table and the timeline, with the repetition column.
    expect(text).toMatch(/^rep +ops\/s +p50 µs +p99 µs +p99\.9 µs +RTs\/op +miss +errors$/m);
    expect(text).toMatch(/^rep +second +ops\/s .*RTs\/op +value +shortcut +log +miss +errors$/m);
    expect(text).toMatch(/^2 +0 +40,000 +100 +100 /m);
  });

  it('charts one line per repetition', async () => {
    const clock = new VirtualClock();
    const report = await drive(
      clock,
      runBench(
        fakeClusterClass({ clock, latencyUs: 100 }),
        { ...options, repetitions: 2, durationSec: 2, warmupSec: 0 },
        quietIo(clock),
      ),
    );
    const chart = benchTimelineChart(report);
    expect(chart.series.map((s) => s.label)).toEqual(['repetition 1', 'repetition 2']);
    const points = chart.series[1]?.points ?? [];
    expect(points.map((p) => p.x)).toEqual([0, 1]);
    for (const p of points) expect(Math.abs(p.y - 40_000)).toBeLessThanOrEqual(10);
    expect(points).toEqual(
      report.timeline
        .filter((p) => p.repetition === 2)
        .map((p) => ({ x: p.second, y: p.opsPerSec })),
    );
    expect(chart.yLabel).toBe('ops/s');
  });

  it('takes the median of an odd and an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([10, 1, 4, 2])).toBe(3);
    expect(median([7])).toBe(7);
    expect(median([])).toBe(0);
  });
});

describe('StatsTimeline', () => {
  const point = (second: number): TimelinePoint => ({
    second,
    opsPerSec: 10,
    p50Us: 1,
    p99Us: 2,
    errors: 0,
  });

  function stats(gets: number, puts: number, rts: number, hits: Partial<BenchStats['hits']>) {
    const h = { value: 0, shortcut: 0, log: 0, miss: 0, notFound: 0, ...hits };
    return {
      ops: { gets, puts, deletes: 0, total: gets + puts },
      rts: { total: rts, perOp: 0 },
      hits: h,
      missCostRts: 2,
      dpm: { bytesUsed: 0 },
      cache: { bytesUsed: 0 },
    } satisfies BenchStats;
  }

  const base = stats(100, 0, 50, { value: 50, miss: 50 });
  const snapshots = [
    stats(200, 100, 150, { value: 100, shortcut: 25, miss: 75 }),
    stats(300, 100, 150, { value: 150, shortcut: 25, log: 50, miss: 75 }),
  ];

  it('diffs consecutive snapshots into per-second round trips and hit fractions', async () => {
    const queue = [...snapshots];
    const timeline = new StatsTimeline({ stats: () => queue.shift() ?? base });
    timeline.onPeriod(point(0));
    timeline.onPeriod(point(1));
    const points = await timeline.finish(base, 2);
    expect(points).toEqual([
      {
        ...point(0),
        repetition: 2,
        rtsPerOp: 0.5,
        hits: { value: 0.5, shortcut: 0.25, log: 0, miss: 0.25 },
      },
      {
        ...point(1),
        repetition: 2,
        rtsPerOp: 0,
        hits: { value: 0.5, shortcut: 0, log: 0.5, miss: 0 },
      },
    ]);
  });

  it('puts promised snapshots in their period whatever order they settle in', async () => {
    const resolvers: ((s: BenchStats) => void)[] = [];
    const timeline = new StatsTimeline({
      stats: () => new Promise<BenchStats>((resolve) => resolvers.push(resolve)),
    });
    timeline.onPeriod(point(0));
    timeline.onPeriod(point(1));
    const finished = timeline.finish(base, 1);
    resolvers[1]?.(snapshots[1] ?? base);
    resolvers[0]?.(snapshots[0] ?? base);
    const points = await finished;
    expect(points.map((p) => p.hits.log)).toEqual([0, 0.5]);
    expect(points.map((p) => p.rtsPerOp)).toEqual([0.5, 0]);
  });

  it('keeps many periods, and reports a failed snapshot from finish, not from onPeriod', async () => {
    let n = 0;
    const many = new StatsTimeline({ stats: () => stats(++n * 10, 0, n * 10, { value: n * 10 }) });
    for (let i = 0; i < 100; i++) many.onPeriod(point(i));
    const points = await many.finish(stats(0, 0, 0, {}), 1);
    expect(points).toHaveLength(100);
    expect(points.every((p) => p.rtsPerOp === 1 && p.hits.value === 1)).toBe(true);

    const failing = new StatsTimeline({
      stats: () => {
        throw new Error('stats failed');
      },
    });
    expect(() => failing.onPeriod(point(0))).not.toThrow();
    await expect(failing.finish(base, 1)).rejects.toThrow('stats failed');
  });
});
