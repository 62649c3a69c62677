import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { TriggerSession, type TriggerCommand } from '../../../src/bench/index.js';
import { runCli, type CliIo } from '../../../src/cli/program.js';
import { parseTriggerScript } from '../../../src/cli/trigger-commands.js';
import { FakeElasticCluster, VirtualClock, drive, fakeElasticClusterClass } from './fakes.js';

function script(text: string): TriggerCommand[] {
  const parsed = parseTriggerScript(text);
  expect(parsed.errors).toEqual([]);
  return parsed.commands;
}

function session(kns = 2, latencyUs = 500) {
  const clock = new VirtualClock();
  const cluster = new FakeElasticCluster({ clock, latencyUs, kns });
  const out: string[] = [];
  const errors: string[] = [];
  const trigger = new TriggerSession(
    cluster,
    { log: (line) => out.push(line), error: (line) => errors.push(line), clock },
    { seed: 7 },
  );
  /** Runs the commands in order, as the CLI does, then waits for the background runs. */
  const run = (commands: TriggerCommand[]) =>
    drive(
      clock,
      (async () => {
        const outcomes = [];
        for (const command of commands) outcomes.push(await trigger.execute(command));
        await trigger.waitForRuns();
        return outcomes;
      })(),
    );
  return { clock, cluster, trigger, out, errors, run };
}

describe('TriggerSession', () => {
  it('runs LOAD, a background RUN, ADD and FAIL while it runs, and WAIT', async () => {
    const { cluster, out, errors, run } = session(2);
    const outcomes = await run(
      script(
        [
          'LOAD:100:16:8:1',
          'RUN:0.9:100:16:1:2:0.99:2',
          'SLEEP:0.5',
          'ADD:1',
          'FAIL:1',
          'WAIT',
          'STATS',
        ].join('\n'),
      ),
    );
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']);
    expect(errors).toEqual([]);
    expect(cluster.calls).toEqual(['addKn', 'failKn(0)']);
    expect(cluster.knIds()).toEqual([1, 2]);
    expect(cluster.data.size).toBeGreaterThanOrEqual(100);
    const text = out.join('\n');
    expect(text).toMatch(/LOAD: note: threads \(8\) and nodes \(1\) are ignored/);
    expect(text).toMatch(/LOAD: 100 keys of 16 bytes in /);
    // The KN changes happen while the run goes on, half a second in.
    expect(text).toMatch(/\[ {3}0\.5 s\] ADD: KN 2 added, 64 slots moved in 5\.0 ms; 3 KNs live/);
    expect(text).toMatch(/FAIL: KN 0 failed, 64 slots moved in 5\.0 ms; 2 KNs live \(1, 2\)/);
    // 2 operations in flight, 500 µs each: 4000 ops/s in every period (the ops finishing on the
    // boundary count for the next one).
    const periods = out.filter((line) => /\[run 1\] \d\.\d s: /.test(line));
    expect(periods).toHaveLength(2);
    expect(periods[0]).toMatch(/\[run 1\] 1\.0 s: 3,998 ops\/s, p50 500 µs, p99 500 µs, 0 errors/);
    expect(periods[1]).toMatch(/\[run 1\] 2\.0 s: 4,002 ops\/s, p50 500 µs, p99 500 µs, 0 errors/);
    const done = out.findIndex((line) => line.includes('[run 1] done: 8,000 ops in 2.0 s'));
    const waited = out.findIndex((line) => line.includes('WAIT: 1 background run finished'));
    expect(done).toBeGreaterThan(0);
    expect(waited).toBeGreaterThan(done);
    expect(text).toMatch(/STATS: 2 KNs live \(1, 2\)/);
  });

  it('refuses to remove or fail the last KN, and changes nothing', async () => {
    const { cluster, out, errors, run } = session(2);
    const outcomes = await run(script('REMOVE:2\nFAIL:3\nREMOVE:1\nREMOVE:1'));
    expect(outcomes).toEqual(['failed', 'failed', 'ok', 'failed']);
    expect(cluster.calls).toEqual(['removeKn(1)']);
    expect(cluster.knIds()).toEqual([0]);
    expect(errors[0]).toMatch(
      /REMOVE:2: cannot remove 2 KNs of 2 live \(0, 1\): at least one KN must stay; nothing was changed/,
    );
    expect(errors[1]).toMatch(/FAIL:3: cannot fail 3 KNs of 2 live/);
    expect(errors[2]).toMatch(/REMOVE:1: cannot remove 1 KN of 1 live \(0\)/);
    expect(out.join('\n')).toMatch(/REMOVE: KN 1 removed/);
  });

  it('removes the newest KNs first', async () => {
    const { cluster, run } = session(1);
    await run(script('ADD:3\nREMOVE:2'));
    expect(cluster.calls).toEqual(['addKn', 'addKn', 'addKn', 'removeKn(3)', 'removeKn(2)']);
    expect(cluster.knIds()).toEqual([0, 1]);
  });

  it('replays the WARM keys in WARM-RUN and needs a WARM first', async () => {
    const { cluster, out, errors, run } = session(1, 1000);
    const gets: string[] = [];
    const outcomes = await run(script('WARM-RUN:1:8:1:1:1\nLOAD:50:8\nWARM:50:8:20:0.99'));
    expect(outcomes).toEqual(['failed', 'ok', 'ok']);
    expect(errors[0]).toMatch(/no WARM has run yet/);
    expect(out.join('\n')).toMatch(/WARM: 20 gets of \d+ distinct keys \(zipf 0\.99 over 50\)/);
    const warmed = new Set(cluster.cached);
    cluster.beforeOpHook = (kind, key) => void (kind === 'get' && gets.push(key));
    await run(script('WARM-RUN:1:8:0.1:0.1:1'));
    expect(gets.length).toBeGreaterThan(50);
    expect(gets.every((key) => warmed.has(key))).toBe(true);
    expect(out.join('\n')).toMatch(/\[run 1\] done: /);
  });

  it('inserts new keys after the loaded ones when is_update_only is 0', async () => {
    const { cluster, run } = session(1, 1000);
    await run(script('LOAD:10:8\nRUN:0:10:8:1:0.01:0:1:0'));
    // 10 ms of puts at 1 ms each, every one a new key.
    expect(cluster.data.size).toBe(20);
    expect(cluster.data.has('user:19')).toBe(true);
  });

  it('reports a run that fails, and counts it', async () => {
    const { cluster, trigger, errors, run } = session(1, 100);
    cluster.beforeOpHook = () => {
      throw new Error('boom');
    };
    await run(script('RUN:1:10:8:1:1:0:2'));
    expect(errors.join('\n')).toMatch(/\[run 1\] RUN:1:10:8:1:1:0:2 failed: boom/);
    expect(trigger.failures).toBe(1);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'dinomo-trigger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function writeScript(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function capture(overrides: Partial<CliIo>) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text) },
    stderrIsTty: false,
    loadCluster: () => Promise.reject(new Error('no plain cluster in this test')),
    ...overrides,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

describe('dinomo trigger', () => {
  it('exits 2 on a script with bad lines, naming them, and starts nothing', async () => {
    let loads = 0;
    const path = writeScript('bad.txt', 'LOAD:100:8\nRUN:0.9:100\nADD:1\nTELEPORT:3\n');
    const { io, stdout, stderr } = capture({
      loadElasticCluster: () => {
        loads++;
        return Promise.reject(new Error('must not start'));
      },
    });
    expect(await runCli(['trigger', '--file', path], io)).toBe(2);
    expect(loads).toBe(0);
    expect(stdout()).toBe('');
    expect(stderr()).toContain(`${path}: line 2: RUN takes 7 or 8 fields after the name, got 2`);
    expect(stderr()).toContain('  expected: RUN:read_ratio:num_keys:value_len:report_period_s');
    expect(stderr()).toContain(`${path}: line 4: unknown command "TELEPORT"`);
    expect(stderr()).toMatch(/2 bad lines: nothing was run/);
  });

  it('exits 2 for a bad flag or a missing file', async () => {
    const flag = capture({});
    expect(await runCli(['trigger', '--kns', '0'], flag.io)).toBe(2);
    expect(flag.stderr()).toMatch(/dinomo trigger: --kns must be an integer from 1 to 64/);
    const missing = capture({});
    expect(await runCli(['trigger', '--file', join(dir, 'nope.txt')], missing.io)).toBe(2);
    expect(missing.stderr()).toMatch(/cannot read .*nope\.txt/);
  });

  it('runs a script, waits for its runs and stops the cluster', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeElasticClusterClass({ clock, latencyUs: 500 });
    const path = writeScript(
      'good.txt',
      '# a run with a KN added\nLOAD:20:8\nRUN:1:20:8:1:1:0:1\nADD:1\n',
    );
    let loaded!: () => void;
    const loading = new Promise<void>((resolve) => (loaded = resolve));
    const { io, stdout, stderr } = capture({
      clock,
      loadElasticCluster: () => {
        loaded();
        return Promise.resolve(clusterClass);
      },
    });
    // The file is read with real I/O; virtual time only starts with the cluster.
    const running = runCli(['trigger', '--file', path, '--kns', '2', '--seed', '3'], io);
    await loading;
    expect(await drive(clock, running)).toBe(0);
    expect(clusterClass.started).toEqual([{ kns: 2, threadsPerKn: 2 }]);
    expect(clusterClass.instances[0]?.calls).toEqual(['addKn', 'stop']);
    expect(stdout()).toMatch(/> LOAD:20:8\n.*LOAD: 20 keys/);
    expect(stdout()).toMatch(/\[run 1\] RUN:1:20:8:1:1:0:1: 100% get, .*seed 3/);
    expect(stdout()).toMatch(/\[run 1\] done: 2,000 ops in 1\.0 s/);
    expect(stderr()).toMatch(/starting an embedded cluster: 2 KN x 2 threads \(seed 3\)/);
  });

  it('stops a script at a failing command with exit 1', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeElasticClusterClass({ clock });
    const path = writeScript('fails.txt', 'REMOVE:1\nADD:1\n');
    let loaded!: () => void;
    const loading = new Promise<void>((resolve) => (loaded = resolve));
    const { io, stderr } = capture({
      clock,
      loadElasticCluster: () => {
        loaded();
        return Promise.resolve(clusterClass);
      },
    });
    const running = runCli(['trigger', '--file', path], io);
    await loading;
    expect(await drive(clock, running)).toBe(1);
    expect(clusterClass.instances[0]?.calls).toEqual(['stop']);
    expect(stderr()).toMatch(/cannot remove 1 KN of 1 live \(0\)/);
    expect(stderr()).toMatch(/the script stops at line 1/);
  });

  it('reads stdin line by line, reports a bad line and goes on, without a prompt off a terminal', async () => {
    const clock = new VirtualClock();
    const clusterClass = fakeElasticClusterClass({ clock });
    const { io, stdout, stderr } = capture({
      clock,
      loadElasticCluster: () => Promise.resolve(clusterClass),
      stdin: Readable.from(['ADD:1\nADD:zero\n', 'stats\nQUIT\nADD:1\n']),
      stdinIsTty: false,
    });
    expect(await drive(clock, runCli(['trigger', '--kns', '1'], io))).toBe(0);
    expect(clusterClass.instances[0]?.calls).toEqual(['addKn', 'stop']);
    expect(stderr()).toMatch(/line 2: ADD n must be a number \(got "zero"\)/);
    expect(stdout()).toMatch(/STATS: 2 KNs live \(0, 1\)/);
    expect(stdout()).not.toContain('trigger>');
  });

  it('prompts on a terminal', async () => {
    const clock = new VirtualClock();
    const { io, stdout } = capture({
      clock,
      loadElasticCluster: () => Promise.resolve(fakeElasticClusterClass({ clock })),
      stdin: Readable.from(['WAIT\n']),
      stdinIsTty: true,
    });
    expect(await drive(clock, runCli(['trigger'], io))).toBe(0);
    expect(stdout()).toMatch(/^trigger> .*WAIT: 0 background runs finished\ntrigger> $/s);
  });

  it('lists the commands in its help', async () => {
    const { io, stdout } = capture({});
    expect(await runCli(['trigger', '--help'], io)).toBe(0);
    expect(stdout()).toContain('WARM-RUN:read_ratio:value_len:report_period:duration');
    expect(stdout()).toMatch(/ADD and REMOVE scaled benchmark pods/);
  });
});
