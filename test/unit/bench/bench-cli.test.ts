import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeTimelineChart, type PngConverter } from '../../../src/cli/bench-command.js';
import { FlagError, parseBenchFlags, type BenchFlagValues } from '../../../src/cli/flags.js';
import { runCli, type CliIo } from '../../../src/cli/program.js';
import type { BenchRunReport, DemoProgress } from '../../../src/bench/index.js';
import { DinomoError } from '../../../src/errors/index.js';
import { VirtualClock, drive, fakeClusterClass } from './fakes.js';

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
  /** How often the command asked for the Cluster class. */
  loads: () => number;
}

function capture(overrides: Partial<CliIo> & { clusterClass?: unknown }): Captured {
  const out: string[] = [];
  const err: string[] = [];
  let loads = 0;
  const { clusterClass, ...rest } = overrides;
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    stderrIsTty: false,
    loadCluster: () => {
      loads++;
      return clusterClass === undefined
        ? Promise.reject(new Error('no cluster in this test'))
        : Promise.resolve(clusterClass as never);
    },
    ...rest,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join(''), loads: () => loads };
}

/** A short run: 100 keys, 0.2 s measured after 0.05 s of warm-up, 2 in flight, seed 5. */
const quick = [
  'bench',
  '--keys',
  '100',
  '--duration',
  '0.2',
  '--warmup',
  '0.05',
  '--concurrency',
  '2',
  '--seed',
  '5',
];

const everyFlag = [
  '--mode',
  '--workload',
  '--kns',
  '--threads',
  '--duration',
  '--warmup',
  '--repetitions',
  '--keys',
  '--value-bytes',
  '--zipf',
  '--distribution',
  '--key-order',
  '--concurrency',
  '--rate',
  '--max-in-flight',
  '--cache-bytes',
  '--region-bytes',
  '--seed',
  '--json',
  '--timeline-svg',
  '--no-progress',
];

describe('parseBenchFlags', () => {
  it('fills the defaults', () => {
    expect(parseBenchFlags({}, () => 99)).toEqual({
      json: false,
      progress: true,
      timelineSvg: null,
      seedGiven: false,
      options: {
        mode: 'dinomo',
        kns: 1,
        threadsPerKn: 2,
        workload: 'read-mostly',
        keys: 100_000,
        valueBytes: 1000,
        zipf: 0.99,
        distribution: null,
        keyOrder: 'scrambled',
        durationSec: 10,
        warmupSec: 2,
        repetitions: 1,
        concurrency: 64,
        ratePerSec: null,
        maxInFlight: 1024,
        cacheBytesPerThread: null,
        regionBytes: null,
        seed: 99,
      },
    });
  });

  it('parses every flag', () => {
    const raw: BenchFlagValues = {
      mode: 'dinomo-n',
      workload: 'ycsb-d',
      kns: '3',
      threads: '4',
      duration: '2.5',
      warmup: '0',
      repetitions: '5',
      keys: '1_000',
      valueBytes: '4k',
      zipf: '0.5',
      distribution: 'uniform',
      keyOrder: 'original',
      concurrency: '8',
      rate: '2e4',
      maxInFlight: '32',
      cacheBytes: '1MiB',
      regionBytes: '1g',
      seed: '42',
      json: true,
      timelineSvg: 'out.svg',
      progress: false,
    };
    expect(parseBenchFlags(raw)).toEqual({
      json: true,
      progress: false,
      timelineSvg: 'out.svg',
      seedGiven: true,
      options: {
        mode: 'dinomo-n',
        kns: 3,
        threadsPerKn: 4,
        workload: 'ycsb-d',
        keys: 1000,
        valueBytes: 4096,
        zipf: 0.5,
        distribution: 'uniform',
        keyOrder: 'original',
        durationSec: 2.5,
        warmupSec: 0,
        repetitions: 5,
        concurrency: 8,
        ratePerSec: 20_000,
        maxInFlight: 32,
        cacheBytesPerThread: 1024 ** 2,
        regionBytes: 1024 ** 3,
        seed: 42,
      },
    });
  });

  it('names the flag, with the code INVALID_OPTION', () => {
    let error: unknown;
    try {
      parseBenchFlags({ mode: 'redis' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FlagError);
    expect(error).toMatchObject({ flag: '--mode', code: 'INVALID_OPTION' });
    expect((error as Error).message).toBe(
      '--mode must be one of dinomo, clover, dinomo-n (got "redis")',
    );
  });
});

describe('dinomo bench', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('--json prints exactly one JSON object with the demo fields, mode, workload and kns', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock, latencyUs: 100 });
    const progress: string[] = [];
    const { io, stdout, stderr } = capture({
      clusterClass,
      clock,
      stderrIsTty: true,
      createProgress: () => recordingProgress(progress),
    });
    const args = [...quick, '--json', '--kns', '2', '--workload', 'ycsb-a', '--mode', 'dinomo'];
    expect(await drive(clock, runCli(args, io))).toBe(0);
    const lines = stdout().trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0] ?? '') as BenchRunReport;
    for (const field of [
      'opsPerSec',
      'latencyUs',
      'rtsPerOp',
      'hitRatio',
      'missCostRts',
      'dpmBytesUsed',
      'mode',
      'workload',
      'kns',
      'threadsPerKn',
      'loop',
      'repetitions',
      'timeline',
    ]) {
      expect(report).toHaveProperty(field);
    }
    expect(report).toMatchObject({ mode: 'dinomo', workload: 'ycsb-a', kns: 2, loop: 'closed' });
    expect(report.opsPerSec).toBe(20_000);
    expect(report.latencyUs.p50).toBe(100);
    expect(report.latencyUs.p999).toBeGreaterThanOrEqual(report.latencyUs.p99);
    expect(report.rtsPerOp).toBeGreaterThan(0);
    expect(report.hitRatio.value + report.hitRatio.miss).toBeCloseTo(1, 3);
    expect(report.missCostRts).toBe(3);
    expect(report.dpmBytesUsed).toBeGreaterThan(0);
    expect(report.config).toMatchObject({ seed: 5, keys: 100, durationSec: 0.2, warmupSec: 0.05 });
    expect(report.timeline[0]).toHaveProperty('hits.value');
    expect(report.timeline[0]).toHaveProperty('rtsPerOp');
    expect(clusterClass.started).toEqual([{ mode: 'dinomo', kns: 2, threadsPerKn: 2 }]);
    expect(clusterClass.instances[0]?.stopped).toBe(true);
    // Logs go to stderr; --json draws no bar even on a terminal.
    expect(stderr()).toMatch(/dinomo bench: loading 100 keys/);
    expect(progress).toEqual([]);
  });

  it('--rate runs the open loop', async () => {
    const clock = new VirtualClock();
    const { io, stdout } = capture({
      clusterClass: fakeClusterClass({ clock, latencyUs: 100 }),
      clock,
    });
    const args = [...quick, '--json', '--rate', '500', '--max-in-flight', '8'];
    expect(await drive(clock, runCli(args, io))).toBe(0);
    const report = JSON.parse(stdout()) as BenchRunReport;
    expect(report.loop).toBe('open');
    expect(report.config).toMatchObject({ ratePerSec: 500, maxInFlight: 8 });
    expect(report.ops.total).toBe(100);
  });

  it('prints the summary table, and draws progress on a terminal unless --no-progress', async () => {
    const clock = new VirtualClock();
    const progress: string[] = [];
    const { io, stdout } = capture({
      clusterClass: fakeClusterClass({ clock, latencyUs: 100 }),
      clock,
      stderrIsTty: true,
      createProgress: () => recordingProgress(progress),
    });
    expect(await drive(clock, runCli([...quick, '--repetitions', '2'], io))).toBe(0);
    const text = stdout();
    expect(text).toMatch(/^mode {9}dinomo$/m);
    expect(text).toMatch(/^cluster {6}1 KN x 2 threads/m);
    expect(text).toMatch(/^loop {9}closed, 2 in flight$/m);
    expect(text).toMatch(/^ops\/s {8}20,000 \(median of 2: 20,000, 20,000\)$/m);
    expect(text).toMatch(/^latency µs {3}p50 100 {3}p99 100 {3}p99\.9 100/m);
    expect(text).toMatch(/^RTs\/op {7}\d\.\d\d$/m);
    expect(text).toMatch(/^gets served {2}value \d+\.\d%/m);
    expect(text).toMatch(/^miss cost {4}3\.00 RTs$/m);
    expect(text).toMatch(/^DPM used {5}\d/m);
    expect(text).toMatch(/^errors {7}none$/m);
    expect(progress).toEqual(['start load 100', 'stop', 'start run 0.4', 'stop']);

    const quiet: string[] = [];
    const again = capture({
      clusterClass: fakeClusterClass({ clock, latencyUs: 100 }),
      clock,
      stderrIsTty: true,
      createProgress: () => recordingProgress(quiet),
    });
    expect(await drive(clock, runCli([...quick, '--no-progress'], again.io))).toBe(0);
    expect(again.stdout()).toMatch(/^mode {9}dinomo$/m);
    expect(quiet).toEqual([]);
  });

  it.each([
    [['--mode', 'redis'], '--mode'],
    [['--workload', 'ycsb-z'], '--workload'],
    [['--kns', '0'], '--kns'],
    [['--threads', 'many'], '--threads'],
    [['--duration', '0'], '--duration'],
    [['--warmup', '-1'], '--warmup'],
    [['--repetitions', '1.5'], '--repetitions'],
    [['--keys', '1e9'], '--keys'],
    [['--value-bytes', '2MiB'], '--value-bytes'],
    [['--zipf', 'abc'], '--zipf'],
    [['--distribution', 'normal'], '--distribution'],
    [['--key-order', 'random'], '--key-order'],
    [['--concurrency', '0'], '--concurrency'],
    [['--rate', '0'], '--rate'],
    [['--rate', '100', '--max-in-flight', '0'], '--max-in-flight'],
    [['--max-in-flight', '8'], '--max-in-flight'],
    [['--cache-bytes', '8 parsecs'], '--cache-bytes'],
    [['--region-bytes', '1m'], '--region-bytes'],
    [['--seed', '-3'], '--seed'],
    [['--timeline-svg', '/nonexistent-dir-for-dinomo/x.svg'], '--timeline-svg'],
  ])('%j exits 2 naming %s and starts nothing', async (args, flag) => {
    const { io, stdout, stderr, loads } = capture({});
    expect(await runCli(['bench', ...args], io)).toBe(2);
    expect(stderr()).toMatch(new RegExp(`^dinomo bench: INVALID_OPTION: ${flag} `));
    expect(stderr()).toMatch(/dinomo bench --help/);
    expect(stdout()).toBe('');
    expect(loads()).toBe(0);
  });

  it('--help documents every flag and its default', async () => {
    const { io, stdout } = capture({});
    expect(await runCli(['bench', '--help'], io)).toBe(0);
    const help = stdout();
    for (const flag of everyFlag) expect(help).toContain(flag);
    expect(help).toMatch(/--mode <mode> +engine: dinomo \| clover \| dinomo-n \(default dinomo\)/);
    expect(help).toContain('rsvg-convert');
    const defaults = help.match(/\(default/g) ?? [];
    expect(defaults.length).toBeGreaterThanOrEqual(everyFlag.length);
  });

  it('a cluster that refuses the mode gives a clean usage error', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({
      clock,
      startError: new DinomoError('NOT_SUPPORTED', 'mode "clover" is not available yet'),
    });
    const { io, stdout, stderr } = capture({ clusterClass, clock });
    expect(await drive(clock, runCli([...quick, '--mode', 'clover'], io))).toBe(2);
    expect(clusterClass.started[0]).toMatchObject({ mode: 'clover' });
    expect(stderr()).toContain(
      'dinomo bench: NOT_SUPPORTED: mode "clover" is not available yet (This feature',
    );
    expect(stderr()).toMatch(/--mode clover needs a cluster that runs it/);
    expect(stderr()).not.toMatch(/\n\s+at /);
    expect(stdout()).toBe('');
  });

  it('a run that fails exits 1 with the message and no stack', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({
      clock,
      beforeOp: (kind) => {
        if (kind === 'put') throw new Error('disk on fire');
      },
    });
    const { io, stdout, stderr } = capture({ clusterClass, clock });
    expect(await drive(clock, runCli(quick, io))).toBe(1);
    expect(stderr()).toMatch(/^dinomo bench: disk on fire$/m);
    expect(stderr()).not.toMatch(/\n\s+at /);
    expect(stdout()).toBe('');
    expect(clusterClass.instances[0]?.stopped).toBe(true);
  });

  it('--timeline-svg writes the chart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dinomo-bench-'));
    dirs.push(dir);
    const svg = join(dir, 'timeline.svg');
    const clock = new VirtualClock();
    const { io, stderr } = capture({
      clusterClass: fakeClusterClass({ clock, latencyUs: 100 }),
      clock,
    });
    const args = [...quick, '--duration', '2', '--json', '--timeline-svg', svg];
    expect(await driveThenWait(clock, runCli(args, io))).toBe(0);
    const text = readFileSync(svg, 'utf8');
    expect(text.startsWith('<svg')).toBe(true);
    expect(text).toContain('dinomo: read-mostly, 1 KN x 2 threads, closed loop');
    expect(stderr()).toContain(`dinomo bench: wrote ${svg}`);
  });
});

describe('writeTimelineChart', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function report(): Promise<BenchRunReport> {
    const clock = new VirtualClock();
    const { io, stdout } = capture({
      clusterClass: fakeClusterClass({ clock, latencyUs: 100 }),
      clock,
    });
    await drive(clock, runCli([...quick, '--json'], io));
    return JSON.parse(stdout()) as BenchRunReport;
  }

  function tempSvg(): string {
    const dir = mkdtempSync(join(tmpdir(), 'dinomo-chart-'));
    dirs.push(dir);
    return join(dir, 'chart.svg');
  }

  it('converts to a PNG next to the SVG when the converter is available', async () => {
    const svg = tempSvg();
    const calls: string[][] = [];
    const converter: PngConverter = {
      available: () => true,
      convert: (from, to) => {
        calls.push([from, to]);
        return Promise.resolve();
      },
    };
    const files = await writeTimelineChart(svg, await report(), converter);
    const png = svg.replace(/\.svg$/, '.png');
    expect(files).toEqual({ svg, png, pngError: null });
    expect(calls).toEqual([[svg, png]]);
    expect(existsSync(svg)).toBe(true);
  });

  it('writes only the SVG, and says why, without a converter or when it fails', async () => {
    const absent = tempSvg();
    const none: PngConverter = {
      available: () => false,
      convert: () => Promise.reject(new Error('not called')),
    };
    expect(await writeTimelineChart(absent, await report(), none)).toEqual({
      svg: absent,
      png: null,
      pngError: 'rsvg-convert (librsvg) is not on PATH',
    });
    const broken = tempSvg();
    const failing: PngConverter = {
      available: () => true,
      convert: () => Promise.reject(new Error('bad svg')),
    };
    const files = await writeTimelineChart(broken, await report(), failing);
    expect(files.png).toBeNull();
    expect(files.pngError).toMatch(/chart\.png failed: bad svg$/);
    expect(readFileSync(broken, 'utf8').startsWith('<svg')).toBe(true);
  });
});

/**
 * Like `drive`, but once no virtual timer is left the work is awaited for real: writing the chart
 * (and converting it, where rsvg-convert is installed) is file and process I/O after the run.
 */
async function driveThenWait<T>(clock: VirtualClock, work: Promise<T>): Promise<T> {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!settled && !clock.fireNext()) return work;
  }
  return work;
}

function recordingProgress(events: string[]): DemoProgress {
  return {
    start: (phase, total) => events.push(`start ${phase} ${total}`),
    update: () => undefined,
    stop: () => events.push('stop'),
  };
}
