import { describe, expect, it } from 'vitest';
import { FlagError, parseBytes, parseDemoFlags } from '../../../src/cli/flags.js';
import { runCli, type CliIo } from '../../../src/cli/program.js';
import { DinomoError } from '../../../src/errors/index.js';
import { VirtualClock, drive, fakeClusterClass } from './fakes.js';

function flagError(run: () => unknown): FlagError {
  try {
    run();
  } catch (err) {
    if (err instanceof FlagError) return err;
    throw err;
  }
  throw new Error('expected a FlagError');
}

describe('parseDemoFlags', () => {
  it('fills the defaults', () => {
    const parsed = parseDemoFlags({}, () => 99);
    expect(parsed).toEqual({
      json: false,
      seedGiven: false,
      options: {
        kns: 1,
        threadsPerKn: 2,
        keys: 100_000,
        durationSec: 10,
        workload: 'read-mostly',
        zipf: 0.99,
        scramble: false,
        valueBytes: 1000,
        concurrency: 64,
        cacheBytesPerThread: null,
        regionBytes: null,
        seed: 99,
        elastic: false,
      },
    });
  });

  it('parses every flag', () => {
    const parsed = parseDemoFlags({
      kns: '2',
      threads: '3',
      keys: '1_000',
      duration: '0.5',
      workload: 'ycsb-a',
      zipf: '0',
      scramble: true,
      valueBytes: '4k',
      concurrency: '8',
      cacheBytes: '8MiB',
      regionBytes: '1g',
      seed: '42',
      json: true,
      elastic: true,
    });
    expect(parsed).toEqual({
      json: true,
      seedGiven: true,
      options: {
        kns: 2,
        threadsPerKn: 3,
        keys: 1000,
        durationSec: 0.5,
        workload: 'ycsb-a',
        zipf: 0,
        scramble: true,
        valueBytes: 4096,
        concurrency: 8,
        cacheBytesPerThread: 8 * 1024 * 1024,
        regionBytes: 1024 ** 3,
        seed: 42,
        elastic: true,
      },
    });
  });

  it.each([
    [{ kns: 'two' }, '--kns', /must be a number/],
    [{ kns: '0' }, '--kns', /integer from 1 to 64/],
    [{ threads: '1.5' }, '--threads', /integer/],
    [{ keys: '-5' }, '--keys', /must be a number/],
    [{ keys: '1e9' }, '--keys', /from 1 to 16777216/],
    [{ duration: '0' }, '--duration', /from 0.001/],
    [{ duration: '' }, '--duration', /must be a number/],
    [{ zipf: 'abc' }, '--zipf', /must be a number/],
    [{ workload: 'ycsb-z' }, '--workload', /one of read-only, read-mostly/],
    [{ valueBytes: '2MiB' }, '--value-bytes', /from 0 to 1048576/],
    [{ cacheBytes: '8 parsecs' }, '--cache-bytes', /byte count/],
    [{ regionBytes: '1m' }, '--region-bytes', /from 16777216/],
    [{ concurrency: '0x10' }, '--concurrency', /must be a number/],
    [{ seed: '4294967296' }, '--seed', /from 0 to 4294967295/],
    [{ kns: '64', threads: '64' }, '--threads', /at most 1024/],
  ] as const)('rejects %o naming the flag', (flags, flag, message) => {
    const error = flagError(() => parseDemoFlags(flags));
    expect(error.flag).toBe(flag);
    expect(error.message.startsWith(flag)).toBe(true);
    expect(error.message).toMatch(message);
  });

  it('parses byte counts with binary units', () => {
    expect(parseBytes('--x', '1024', 0, 2 ** 40)).toBe(1024);
    expect(parseBytes('--x', '64k', 0, 2 ** 40)).toBe(65_536);
    expect(parseBytes('--x', '1.5KiB', 0, 2 ** 40)).toBe(1536);
    expect(parseBytes('--x', '2 GB', 0, 2 ** 40)).toBe(2 * 1024 ** 3);
    expect(parseBytes('--x', undefined, 0, 1)).toBeNull();
    expect(() => parseBytes('--x', '0.3k', 0, 2 ** 40)).toThrow(/whole number/);
  });
});

interface Captured {
  io: CliIo;
  stdout: () => string;
  stderr: () => string;
}

function capture(overrides: Partial<CliIo>): Captured {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    stderrIsTty: false,
    loadCluster: () => Promise.reject(new Error('no cluster in this test')),
    ...overrides,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

const quickDemo = [
  'demo',
  '--keys',
  '100',
  '--duration',
  '0.2',
  '--concurrency',
  '2',
  '--seed',
  '5',
];

describe('runCli', () => {
  it('prints exactly one JSON object on stdout with --json', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeClusterClass({ clock, latencyUs: 100 });
    const progressCalls: string[] = [];
    const { io, stdout, stderr } = capture({
      loadCluster: () => Promise.resolve(clusterClass),
      clock,
      stderrIsTty: true,
      createProgress: () => {
        progressCalls.push('created');
        return { start: () => undefined, update: () => undefined, stop: () => undefined };
      },
    });
    const code = await drive(clock, runCli([...quickDemo, '--json', '--kns', '2'], io));
    expect(code).toBe(0);
    const lines = stdout().trim().split('\n');
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(Object.keys(report)).toEqual(
      expect.arrayContaining([
        'opsPerSec',
        'latencyUs',
        'rtsPerOp',
        'hitRatio',
        'missCostRts',
        'dpmBytesUsed',
      ]),
    );
    expect(report['config']).toMatchObject({ kns: 2, keys: 100, seed: 5, durationSec: 0.2 });
    expect(report['opsPerSec']).toBe(20_000);
    expect(stderr()).toMatch(/dinomo demo: loading 100 keys/);
    expect(progressCalls).toEqual([]);
    expect(clusterClass.instances[0]?.stopped).toBe(true);
  });

  it('prints the text report without --json and draws progress only on a terminal', async () => {
    const clock = new VirtualClock();
    const progressCalls: string[] = [];
    const { io, stdout } = capture({
      loadCluster: () => Promise.resolve(fakeClusterClass({ clock })),
      clock,
      stderrIsTty: true,
      createProgress: () => ({
        start: (phase) => progressCalls.push(phase),
        update: () => undefined,
        stop: () => undefined,
      }),
    });
    expect(await drive(clock, runCli(quickDemo, io))).toBe(0);
    expect(stdout()).toMatch(/^workload {7}read-mostly/);
    expect(stdout()).toMatch(/throughput/);
    expect(progressCalls).toEqual(['load', 'run']);
  });

  it('exits 2 with a message naming the flag for a bad value', async () => {
    const { io, stdout, stderr } = capture({});
    expect(await runCli(['demo', '--keys', 'lots'], io)).toBe(2);
    expect(stderr()).toBe('dinomo demo: --keys must be a number (got "lots")\n');
    expect(stdout()).toBe('');
  });

  it('exits 2 for an unknown flag and for a missing command', async () => {
    const unknown = capture({});
    expect(await runCli(['demo', '--bogus'], unknown.io)).toBe(2);
    expect(unknown.stderr()).toMatch(/unknown option '--bogus'/);
    const none = capture({});
    expect(await runCli([], none.io)).toBe(2);
    expect(none.stderr()).toMatch(/Usage: dinomo/);
  });

  it('exits 0 for --help and --version', async () => {
    const help = capture({});
    expect(await runCli(['demo', '--help'], help.io)).toBe(0);
    expect(help.stdout()).toMatch(/--value-bytes <n>/);
    const version = capture({});
    expect(await runCli(['--version'], version.io)).toBe(0);
    expect(version.stdout()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('exits 1 when the cluster fails, and 2 when it rejects an option', async () => {
    const failing = capture({
      loadCluster: () =>
        Promise.resolve(
          fakeClusterClass({ clock: new VirtualClock(), startError: new Error('no memory') }),
        ),
    });
    expect(await runCli(quickDemo, failing.io)).toBe(1);
    expect(failing.stderr()).toMatch(/dinomo demo: no memory/);
    const rejecting = capture({
      loadCluster: () =>
        Promise.resolve(
          fakeClusterClass({
            clock: new VirtualClock(),
            startError: new DinomoError('INVALID_OPTION', 'bad region'),
          }),
        ),
    });
    expect(await runCli(quickDemo, rejecting.io)).toBe(2);
  });
});
