import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkPaperPaths,
  paperCommandLine,
  parsePaperFlags,
  type PaperFlagValues,
} from '../../../src/cli/bench-paper-command.js';
import { FlagError } from '../../../src/cli/flags.js';
import { runCli, type CliIo } from '../../../src/cli/program.js';
import type { PaperResult } from '../../../src/bench/index.js';
import { DinomoError } from '../../../src/errors/index.js';
import { VirtualClock, fakeElasticClusterClass } from './fakes.js';

const everyFlag = [
  '--modes',
  '--workloads',
  '--kns',
  '--threads',
  '--duration',
  '--warmup',
  '--repetitions',
  '--keys',
  '--value-bytes',
  '--cache-bytes',
  '--region-bytes',
  '--measured-kns',
  '--scaling-workload',
  '--elastic-modes',
  '--elastic-duration',
  '--elastic-event',
  '--dip-fraction',
  '--out-dir',
  '--doc',
  '--seed',
  '--json',
  '--no-progress',
];

function flagOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlagError) return err.flag;
    throw err;
  }
  return 'no error';
}

describe('parsePaperFlags', () => {
  it('fills the defaults', () => {
    const parsed = parsePaperFlags({}, () => 42);
    expect(parsed.options).toMatchObject({
      modes: ['dinomo', 'clover', 'dinomo-n'],
      workloads: ['read-only', 'read-mostly', 'write-heavy'],
      kns: 1,
      threadsPerKn: 2,
      durationSec: 3,
      warmupSec: 1,
      repetitions: 3,
      keys: 100_000,
      valueBytes: 1000,
      cacheBytesPerThread: 8 * 1024 * 1024,
      regionBytes: 1024 ** 3,
      measuredKns: [1, 2],
      scalingWorkload: 'read-mostly',
      elasticModes: ['dinomo', 'dinomo-n'],
      elasticDurationSec: 12,
      elasticSecond: 'fail',
      dipFraction: 0.5,
      timelineBucketMs: 100,
      seed: 42,
    });
    expect(parsed.options.modelKns).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(parsed).toMatchObject({
      outDir: 'docs/figures',
      doc: 'docs/benchmarks.md',
      json: false,
      progress: true,
      seedGiven: false,
    });
  });

  it('parses every flag, and the command line it gives replays them', () => {
    const raw: PaperFlagValues = {
      modes: 'dinomo-n, dinomo',
      workloads: 'write-heavy',
      kns: '2',
      threads: '3',
      duration: '1.5',
      warmup: '0',
      repetitions: '5',
      keys: '10_000',
      valueBytes: '4k',
      cacheBytes: '1MiB',
      regionBytes: '512MiB',
      measuredKns: '1,2,3',
      scalingWorkload: 'ycsb-a',
      elasticModes: 'dinomo',
      elasticDuration: '6',
      elasticEvent: 'remove',
      dipFraction: '0.25',
      outDir: 'out',
      doc: 'out.md',
      seed: '9',
      json: true,
      progress: false,
    };
    const parsed = parsePaperFlags(raw);
    expect(parsed.options).toMatchObject({
      modes: ['dinomo-n', 'dinomo'],
      workloads: ['write-heavy'],
      kns: 2,
      threadsPerKn: 3,
      durationSec: 1.5,
      warmupSec: 0,
      repetitions: 5,
      keys: 10_000,
      valueBytes: 4096,
      cacheBytesPerThread: 1024 * 1024,
      regionBytes: 512 * 1024 * 1024,
      measuredKns: [1, 2, 3],
      scalingWorkload: 'ycsb-a',
      elasticModes: ['dinomo'],
      elasticDurationSec: 6,
      elasticSecond: 'remove',
      dipFraction: 0.25,
      seed: 9,
    });
    expect(parsed).toMatchObject({ outDir: 'out', doc: 'out.md', json: true, progress: false });
    const line = paperCommandLine(parsed);
    expect(line).toMatch(/^node dist\/cli\/main\.js bench paper --modes dinomo-n,dinomo /);
    // Replaying the command line gives the same options.
    const replayed: Record<string, string> = {};
    const words = line.split(' ').slice(4);
    for (let i = 0; i < words.length; i += 2) {
      const name = (words[i] ?? '')
        .replace(/^--/, '')
        .replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
      replayed[name] = words[i + 1] ?? '';
    }
    expect(parsePaperFlags(replayed).options).toEqual(parsed.options);
  });

  it.each([
    [{ modes: 'dinomo,bogus' }, '--modes'],
    [{ modes: 'dinomo,dinomo' }, '--modes'],
    [{ modes: 'dinomo,' }, '--modes'],
    [{ modes: '' }, '--modes'],
    [{ workloads: 'read-only,nope' }, '--workloads'],
    [{ workloads: 'read-only,read-only' }, '--workloads'],
    [{ kns: '0' }, '--kns'],
    [{ threads: '65' }, '--threads'],
    [{ threads: '64', measuredKns: '1,17' }, '--threads'],
    [{ duration: '0' }, '--duration'],
    [{ duration: 'soon' }, '--duration'],
    [{ warmup: '-1' }, '--warmup'],
    [{ repetitions: '0' }, '--repetitions'],
    [{ repetitions: '1.5' }, '--repetitions'],
    [{ keys: '0' }, '--keys'],
    [{ valueBytes: '2g' }, '--value-bytes'],
    [{ cacheBytes: 'lots' }, '--cache-bytes'],
    [{ regionBytes: '1k' }, '--region-bytes'],
    [{ measuredKns: '0' }, '--measured-kns'],
    [{ measuredKns: '1,65' }, '--measured-kns'],
    [{ measuredKns: '1,1' }, '--measured-kns'],
    [{ scalingWorkload: 'fast' }, '--scaling-workload'],
    [{ elasticModes: 'clover,x' }, '--elastic-modes'],
    [{ elasticDuration: '0.2' }, '--elastic-duration'],
    [{ elasticEvent: 'explode' }, '--elastic-event'],
    [{ dipFraction: '0' }, '--dip-fraction'],
    [{ dipFraction: '1.5' }, '--dip-fraction'],
    [{ outDir: ' ' }, '--out-dir'],
    [{ doc: '' }, '--doc'],
    [{ seed: '-3' }, '--seed'],
    [{ seed: String(2 ** 32) }, '--seed'],
  ] as [PaperFlagValues, string][])('%j is refused, naming %s', (raw, flag) => {
    expect(flagOf(() => parsePaperFlags(raw, () => 1))).toBe(flag);
  });
});

describe('checkPaperPaths', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('accepts new or existing paths of the right kind, and refuses the others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dinomo-paper-'));
    dirs.push(dir);
    const file = join(dir, 'doc.md');
    writeFileSync(file, '# doc\n');
    expect(flagOf(() => checkPaperPaths(join(dir, 'new-figures'), join(dir, 'new.md')))).toBe(
      'no error',
    );
    expect(flagOf(() => checkPaperPaths(dir, file))).toBe('no error');
    expect(flagOf(() => checkPaperPaths(file, join(dir, 'x.md')))).toBe('--out-dir');
    expect(flagOf(() => checkPaperPaths(dir, dir))).toBe('--doc');
    expect(flagOf(() => checkPaperPaths(dir, join(dir, 'missing', 'x.md')))).toBe('--doc');
  });
});

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
  loads: () => number;
}

function capture(clusterClass?: unknown, clock?: VirtualClock): Captured {
  const out: string[] = [];
  const err: string[] = [];
  let loads = 0;
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
  };
  if (clock !== undefined) io.clock = clock;
  return { io, stdout: () => out.join(''), stderr: () => err.join(''), loads: () => loads };
}

/** Drives virtual time while timers are pending; real I/O (files) settles on its own. */
async function driveThenWait<T>(clock: VirtualClock, work: Promise<T>): Promise<T> {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  let idle = 0;
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (settled) break;
    if (clock.fireNext()) idle = 0;
    else if (++idle > 1000) return work;
    else await new Promise<void>((resolve) => setTimeout(resolve, 1));
  }
  return work;
}

describe('dinomo bench paper', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('--help documents every flag with its default', async () => {
    const { io, stdout } = capture();
    expect(await runCli(['bench', 'paper', '--help'], io)).toBe(0);
    const help = stdout();
    for (const flag of everyFlag) expect(help).toContain(flag);
    expect(help).toContain('<!-- bench-paper:begin -->');
    const defaults = help.match(/\(default/g) ?? [];
    expect(defaults.length).toBeGreaterThanOrEqual(everyFlag.length - 1);
  });

  it('a bad flag exits 2, names it, and starts nothing', async () => {
    const { io, stdout, stderr, loads } = capture();
    expect(await runCli(['bench', 'paper', '--modes', 'dinomo,mystery'], io)).toBe(2);
    expect(stderr()).toMatch(/^dinomo bench paper: INVALID_OPTION: --modes takes modes from/);
    expect(stderr()).toContain('dinomo bench paper --help');
    expect(stdout()).toBe('');
    expect(loads()).toBe(0);
  });

  it('options of `dinomo bench` before `paper` are refused, not ignored', async () => {
    const { io, stderr, loads } = capture();
    expect(await runCli(['bench', '--kns', '2', 'paper'], io)).toBe(2);
    expect(stderr()).toMatch(/put the options after "paper"/);
    expect(loads()).toBe(0);
  });

  it('a mode the cluster refuses is a usage error found before any run', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeElasticClusterClass({
      clock,
      startError: new DinomoError('NOT_SUPPORTED', 'mode "clover" is not available yet'),
    });
    const dir = mkdtempSync(join(tmpdir(), 'dinomo-paper-'));
    dirs.push(dir);
    const { io, stderr } = capture(clusterClass, clock);
    const args = [
      'bench',
      'paper',
      '--modes',
      'clover',
      '--out-dir',
      dir,
      '--doc',
      join(dir, 'b.md'),
    ];
    expect(await driveThenWait(clock, runCli(args, io))).toBe(2);
    expect(clusterClass.started).toHaveLength(1);
    expect(stderr()).toContain('NOT_SUPPORTED: mode "clover" is not available yet');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('runs every part on a fake cluster, writes the charts and the doc section, and --json', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeElasticClusterClass({ clock, latencyUs: 2000, changeUs: 50_000 });
    const dir = mkdtempSync(join(tmpdir(), 'dinomo-paper-'));
    dirs.push(dir);
    const docsDir = join(dir, 'docs');
    mkdirSync(docsDir);
    const doc = join(docsDir, 'benchmarks.md');
    writeFileSync(doc, '# Benchmarks\n\nKeep me.\n');
    const { io, stdout, stderr } = capture(clusterClass, clock);
    const args = [
      'bench',
      'paper',
      '--modes',
      'dinomo,clover',
      '--workloads',
      'read-only,read-mostly',
      '--keys',
      '50',
      '--duration',
      '0.2',
      '--warmup',
      '0',
      '--repetitions',
      '1',
      '--elastic-modes',
      'dinomo',
      '--elastic-duration',
      '0.9',
      '--out-dir',
      join(docsDir, 'figures'),
      '--doc',
      doc,
      '--seed',
      '3',
      '--json',
    ];
    expect(await driveThenWait(clock, runCli(args, io))).toBe(0);
    const result = JSON.parse(stdout()) as PaperResult & { files: string[] };
    expect(result.equalBudget.map((r) => `${r.mode} ${r.workload}`)).toEqual([
      'dinomo read-only',
      'dinomo read-mostly',
      'clover read-only',
      'clover read-mostly',
    ]);
    // The scaling part reuses the 1-KN read-mostly runs and measures 2 KNs per mode.
    expect(result.scaling.measured.map((r) => `${r.mode} ${r.kns}`)).toEqual([
      'dinomo 1',
      'dinomo 2',
      'clover 1',
      'clover 2',
    ]);
    expect(result.scaling.models.map((m) => `${m.mode} ${m.network}`)).toEqual([
      'dinomo fdr',
      'dinomo this-machine-shm',
      'dinomo fdr-native-kn',
      'clover fdr',
      'clover this-machine-shm',
      'clover fdr-native-kn',
    ]);
    // The what-if replaces the calibrated KN CPU with a native KN's, on the paper's network.
    for (const m of result.scaling.models.filter((x) => x.network === 'fdr-native-kn')) {
      expect(m.costs.knCpuUsPerOp).toBe(1);
    }
    for (const m of result.scaling.models) {
      expect(m.points.every((p) => p.label === 'model')).toBe(true);
      expect(m.points.map((p) => p.kns)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    }
    // Calibrated on 1 KN: the this-machine model goes through that point.
    const calibrated = result.scaling.models.find((m) => m.network === 'this-machine-shm');
    expect(Math.abs(calibrated?.check[0]?.errorPct ?? 99)).toBeLessThan(0.01);
    const elastic = result.elasticity[0];
    expect(elastic?.events.map((e) => `${e.kind} KN ${e.knId}`)).toEqual(['add KN 1', 'fail KN 0']);
    expect(elastic?.dips).toHaveLength(2);
    expect(elastic?.bucketMs).toBe(100);
    expect((elastic?.timeline.length ?? 0) >= 8).toBe(true);
    // Every cluster started got the same cache budget and region; all were stopped.
    const budgets = new Set(
      clusterClass.started.map((o) => `${o.cacheBytesPerThread} ${o.regionBytes}`),
    );
    expect([...budgets]).toEqual([`${8 * 1024 * 1024} ${1024 ** 3}`]);
    expect(clusterClass.instances.every((c) => c.stopped)).toBe(true);
    // Files: the charts and the doc, with the section appended and the rest kept.
    expect(readdirSync(join(docsDir, 'figures')).sort()).toEqual(
      expect.arrayContaining([
        'paper-elastic-dinomo.svg',
        'paper-scaling-fdr.svg',
        'paper-scaling-this-machine-shm.svg',
        'paper-scaling-fdr-native-kn.svg',
      ]),
    );
    const text = readFileSync(doc, 'utf8');
    expect(text.startsWith('# Benchmarks\n\nKeep me.\n\n<!-- bench-paper:begin -->\n')).toBe(true);
    expect(text.endsWith('<!-- bench-paper:end -->\n')).toBe(true);
    expect(text).toContain('bench paper --modes dinomo,clover --workloads read-only,read-mostly');
    expect(text).toContain('](figures/paper-scaling-fdr.svg)');
    expect(result.files).toContain(doc);
    // --json: no progress lines.
    expect(stderr()).not.toContain('[1/');

    // A second run replaces the section instead of adding one.
    const again = capture(clusterClass, clock);
    const textArgs = args.filter((a) => a !== '--json');
    expect(await driveThenWait(clock, runCli(textArgs, again.io))).toBe(0);
    const second = readFileSync(doc, 'utf8');
    expect(second.split('<!-- bench-paper:begin -->')).toHaveLength(2);
    expect(second.startsWith('# Benchmarks\n\nKeep me.\n\n')).toBe(true);
    // Progress: a line per finished run, then the summary on stdout.
    expect(again.stderr()).toMatch(/\[1\/7\] equal cache budget: dinomo read-only 1 KN/);
    expect(again.stderr()).toMatch(/\[7\/7\] elasticity: dinomo/);
    expect(again.stdout()).toContain('Equal cache budget');
    expect(again.stdout()).toContain('Elasticity dips');
  });
});
