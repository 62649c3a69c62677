import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster } from '../../src/index.js';
import { runCli, type CliIo } from '../../src/cli/program.js';
import type { BenchClusterClass } from '../../src/bench/index.js';

/**
 * `dinomo bench paper` end to end on the real embedded cluster, mode dinomo only (the baselines
 * join the cluster separately), with tiny sizes and durations: every part runs, and the doc section
 * and the charts are written.
 */
describe('dinomo bench paper (real cluster, dinomo only)', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
    dir = null;
  });

  it('runs all three parts and writes the tables and the charts', async () => {
    dir = mkdtempSync(join(tmpdir(), 'dinomo-paper-it-'));
    const docsDir = join(dir, 'docs');
    mkdirSync(docsDir);
    const doc = join(docsDir, 'benchmarks.md');
    const existing = '# Benchmarks\n\nEarlier results stay as they are.\n';
    writeFileSync(doc, existing);
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = {
      stdout: { write: (text: string) => out.push(text) },
      stderr: { write: (text: string) => err.push(text) },
      stderrIsTty: false,
      loadCluster: () => Promise.resolve(Cluster as unknown as BenchClusterClass),
    };
    const figures = join(docsDir, 'figures');
    const args = [
      'bench',
      'paper',
      '--modes',
      'dinomo',
      '--keys',
      '2000',
      '--duration',
      '0.5',
      '--warmup',
      '0.1',
      '--repetitions',
      '1',
      '--region-bytes',
      '128MiB',
      '--cache-bytes',
      '1MiB',
      '--elastic-modes',
      'dinomo',
      '--elastic-duration',
      '1.5',
      '--elastic-event',
      'remove',
      '--out-dir',
      figures,
      '--doc',
      doc,
      '--seed',
      '11',
    ];
    const code = await runCli(args, io);
    if (code !== 0) throw new Error(`exit ${code}: ${err.join('')}`);
    const text = readFileSync(doc, 'utf8');
    expect(text.startsWith(`${existing}\n<!-- bench-paper:begin -->\n`)).toBe(true);
    expect(text.endsWith('<!-- bench-paper:end -->\n')).toBe(true);
    expect(text).toContain(
      'bench paper --modes dinomo --workloads read-only,read-mostly,write-heavy',
    );
    for (const workload of ['read-only', 'read-mostly', 'write-heavy']) {
      expect(text).toMatch(new RegExp(`\\| dinomo \\| ${workload} \\| \\*\\*[\\d,]+\\*\\* \\|`));
    }
    // Scaling: measured at 1 and 2 KNs, each with its model, and the model-only table.
    expect(text).toMatch(/\| dinomo \| 1 \| \*\*[\d,]+\*\* \| [\d,]+ \(model, [+-][\d.]+%\) \|/);
    expect(text).toMatch(/\| dinomo \| 2 \| \*\*[\d,]+\*\* \| [\d,]+ \(model, [+-][\d.]+%\) \|/);
    expect(text).toMatch(/\| dinomo \| fdr \| [\d.]+ \|( [\d,]+ \(model\) \|){5}/);
    // Elasticity: both events, with a dip row or "no dip" each.
    expect(text).toMatch(/\| dinomo \| add KN 2 \| [\d.]+ \| [\d,]+ \|/);
    expect(text).toMatch(/\| dinomo \| remove KN 1 \| [\d.]+ \| [\d,]+ \|/);
    expect(text).toMatch(/\| dinomo \| add KN 2 \| (no dip|\d+) \|/);
    expect(text).toContain('](figures/paper-elastic-dinomo.svg)');
    expect(text).toContain('### The cost model');
    for (const name of [
      'paper-scaling-fdr.svg',
      'paper-scaling-this-machine-shm.svg',
      'paper-elastic-dinomo.svg',
    ]) {
      const path = join(figures, name);
      expect(existsSync(path)).toBe(true);
      expect(readFileSync(path, 'utf8').startsWith('<svg')).toBe(true);
    }
    expect(err.join('')).toMatch(/\[5\/5\] elasticity: dinomo/);
    expect(out.join('')).toContain('Equal cache budget');
  });
});
