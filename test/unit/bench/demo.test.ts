import { describe, expect, it } from 'vitest';
import {
  demoDefaults,
  formatReport,
  runDemo,
  type DemoOptions,
  type DemoProgress,
} from '../../../src/bench/index.js';
import { DinomoError } from '../../../src/errors/index.js';
import { VirtualClock, drive, fakeClusterClass, fakeElasticClusterClass } from './fakes.js';

const options: DemoOptions = {
  ...demoDefaults,
  keys: 200,
  durationSec: 0.5,
  concurrency: 4,
  valueBytes: 100,
  cacheBytesPerThread: null,
  regionBytes: 64 * 1024 * 1024,
  seed: 3,
};

function recordingProgress(events: string[]): DemoProgress {
  return {
    start: (phase, total) => events.push(`start ${phase} ${total}`),
    update: () => undefined,
    stop: () => events.push('stop'),
  };
}

describe('runDemo', () => {
  it('starts a cluster, loads, runs, reports and stops it', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock, latencyUs: 50 });
    const logs: string[] = [];
    const events: string[] = [];
    const report = await drive(
      clock,
      runDemo(clusterClass, options, {
        log: (line) => logs.push(line),
        progress: recordingProgress(events),
        clock,
      }),
    );
    expect(clusterClass.started).toEqual([
      { kns: 1, threadsPerKn: 2, regionBytes: 64 * 1024 * 1024 },
    ]);
    const cluster = clusterClass.instances[0];
    expect(cluster?.stopped).toBe(true);
    expect(cluster?.data.size).toBe(200);
    expect(report.load?.keys).toBe(200);
    expect(report.ops.total).toBe(4 * 10_000);
    expect(report.opsPerSec).toBe(80_000);
    expect(report.latencyUs.p50).toBe(50);
    expect(report.hitRatio.value + report.hitRatio.miss).toBeCloseTo(1, 3);
    expect(report.config).toMatchObject({
      workload: 'read-mostly',
      readFraction: 0.95,
      seed: 3,
      cacheBytesPerThread: null,
    });
    expect(events).toEqual(['start load 200', 'stop', 'start run 0.5', 'stop']);
    expect(logs.join('\n')).toMatch(/seed 3/);
  });

  it('stops the cluster and rethrows when the run fails', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({
      clock,
      beforeOp: (kind) => {
        if (kind === 'get') throw new DinomoError('WORKER_FAILED', 'test');
      },
    });
    const failure = await drive(
      clock,
      runDemo(clusterClass, options, { log: () => undefined, progress: null, clock }),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(DinomoError);
    expect(clusterClass.instances[0]?.stopped).toBe(true);
  });

  it('validates the workload before starting anything', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock });
    await expect(
      runDemo(
        clusterClass,
        { ...options, zipf: -1 },
        { log: () => undefined, progress: null, clock },
      ),
    ).rejects.toThrow(/Zipf/);
    expect(clusterClass.started).toEqual([]);
  });

  it('--elastic adds a KN a third into the run and fails the first two thirds in', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeElasticClusterClass({ clock, latencyUs: 50, changeUs: 2000 });
    const logs: string[] = [];
    const report = await drive(
      clock,
      runDemo(
        clusterClass,
        { ...options, durationSec: 0.3, elastic: true },
        {
          log: (line) => logs.push(line),
          progress: null,
          clock,
        },
      ),
    );
    expect(clusterClass.instances[0]?.calls).toEqual(['addKn', 'failKn(0)', 'stop']);
    expect(report.events?.map((e) => [e.kind, e.knId])).toEqual([
      ['add', 1],
      ['fail', 0],
    ]);
    expect(report.events?.[0]?.atSec).toBeCloseTo(0.1, 2);
    expect(report.events?.[1]?.atSec).toBeCloseTo(0.2, 2);
    expect(formatReport(report)).toMatch(/reconfigured {3}t=0\.1s add KN 1: 64 slots moved/);
    expect(logs.some((l) => l.includes('fail KN 0'))).toBe(true);
  });

  it('--elastic on a cluster that cannot change refuses with NOT_SUPPORTED', async () => {
    const clock = new VirtualClock();
    const run = drive(
      clock,
      runDemo(
        fakeClusterClass({ clock, latencyUs: 50 }),
        { ...options, elastic: true },
        {
          log: () => undefined,
          progress: null,
          clock,
        },
      ),
    );
    await expect(run).rejects.toMatchObject({ code: 'NOT_SUPPORTED' });
  });
});
