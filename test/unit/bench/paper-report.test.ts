import { describe, expect, it } from 'vitest';
import {
  elasticChart,
  formatPaperSummary,
  paperSection,
  paperSectionBegin as begin,
  paperSectionEnd as end,
  scalingChart,
  upsertMarkedSection,
  type PaperMeta,
} from '../../../src/bench/paper-report.js';
import {
  modelScaling,
  paperDefaults,
  type PaperOptions,
  type PaperResult,
  type PaperRun,
} from '../../../src/bench/paper.js';
import { renderLineChart } from '../../../src/bench/svg-chart.js';

describe('upsertMarkedSection', () => {
  const before = '# Benchmarks\n\nSome text.\n\n';
  const after = '\n\n## Later section\n\nMore text, with a trailing space \nand no final newline';

  it('replaces the section between the markers and leaves the rest byte for byte', () => {
    const doc = `${before}${begin}\nold body\n| old | table |\n${end}${after}`;
    const updated = upsertMarkedSection(doc, 'new body\n');
    expect(updated).toBe(`${before}${begin}\nnew body\n${end}${after}`);
    // Idempotent: the same body again changes nothing.
    expect(upsertMarkedSection(updated, 'new body')).toBe(updated);
  });

  it('appends the section after a blank line when the markers are absent', () => {
    expect(upsertMarkedSection('# Doc\n\ntext\n', 'body')).toBe(
      `# Doc\n\ntext\n\n${begin}\nbody\n${end}\n`,
    );
    expect(upsertMarkedSection('# Doc\n\ntext', 'body')).toBe(
      `# Doc\n\ntext\n\n${begin}\nbody\n${end}\n`,
    );
    expect(upsertMarkedSection('# Doc\n\n', 'body')).toBe(`# Doc\n\n${begin}\nbody\n${end}\n`);
    expect(upsertMarkedSection('', 'body')).toBe(`${begin}\nbody\n${end}\n`);
  });

  it('refuses a document whose markers are broken rather than guess', () => {
    expect(() => upsertMarkedSection(`a\n${begin}\nb\n`, 'x')).toThrow(/not/);
    expect(() => upsertMarkedSection(`a\n${end}\nb\n`, 'x')).toThrow(/not/);
    expect(() => upsertMarkedSection(`${end}\n${begin}\n`, 'x')).toThrow(/before/);
    expect(() => upsertMarkedSection(`${begin}\n${end}\n${begin}\n${end}\n`, 'x')).toThrow(
      /more than one/,
    );
  });

  it('takes other markers', () => {
    expect(
      upsertMarkedSection('a <!-- x --> b <!-- y --> c', 'z', '<!-- x -->', '<!-- y -->'),
    ).toBe('a <!-- x -->\nz\n<!-- y --> c');
  });
});

function run(
  mode: PaperRun['mode'],
  workload: PaperRun['workload'],
  kns: number,
  opsPerSec: number,
): PaperRun {
  return {
    mode,
    workload,
    kns,
    threadsPerKn: 2,
    readFraction: workload === 'read-only' ? 1 : workload === 'read-mostly' ? 0.95 : 0.5,
    opsPerSec,
    repetitionOpsPerSec: [opsPerSec - 1, opsPerSec, opsPerSec + 1],
    rtsPerOp: 0.3,
    hitRatio: { value: 0.7, shortcut: 0.15, log: 0.05, miss: 0.1 },
    missCostRts: 2,
    latencyUs: { p50: 300, p99: 3000 },
    errors: 0,
  };
}

function sampleResult(): PaperResult {
  const options: PaperOptions = {
    ...paperDefaults,
    modes: ['dinomo', 'clover'],
    workloads: ['read-only', 'read-mostly'],
    elasticModes: ['dinomo'],
    seed: 7,
  };
  const equalBudget = options.modes.flatMap((m) =>
    options.workloads.map((w) => run(m, w, 1, m === 'dinomo' ? 150_000 : 90_000)),
  );
  const measured = [
    ...equalBudget.filter((r) => r.workload === 'read-mostly'),
    run('dinomo', 'read-mostly', 2, 120_000),
    run('clover', 'read-mostly', 2, 80_000),
  ];
  const timeline = Array.from({ length: 120 }, (_, i) => ({
    second: i / 10,
    opsPerSec: i >= 40 && i < 43 ? 1000 : 100_000,
  }));
  return {
    options,
    equalBudget,
    scaling: modelScaling(options, measured),
    elasticity: [
      {
        mode: 'dinomo',
        opsPerSec: 95_000,
        errors: 2,
        bucketMs: 100,
        events: [
          {
            atSec: 4,
            kind: 'add',
            knId: 2,
            slotsMoved: 8192,
            durationMs: 40,
            maxPauseMs: 30,
            maxReadPauseMs: 35,
            detectMs: null,
            failoverMs: null,
          },
        ],
        timeline,
        dips: [
          {
            event: { atSec: 4, label: 'add KN 2' },
            baselineOpsPerSec: 100_000,
            thresholdOpsPerSec: 50_000,
            baselineBucketCount: 10,
            windowEndMs: 8000,
            dips: [{ startMs: 0, lengthMs: 300, minOpsPerSec: 1000, reachesWindowEnd: false }],
          },
        ],
      },
    ],
    modelAssumptions: ['assumption one', 'assumption two'],
    elapsedSec: 12,
  };
}

const meta: PaperMeta = {
  commandLine: 'node dist/cli/main.js bench paper --seed 7',
  cpus: 2,
  cpuModel: 'Test CPU',
  nodeVersion: 'v20.0.0',
  platform: 'linux x64',
  totalMemBytes: 8 * 1024 ** 3,
  commit: 'abc1234',
  date: '2025-01-02T03:04:05.000Z',
  figures: [{ title: 'Scaling', path: 'figures/paper-scaling-fdr.svg' }],
};

describe('paperSection', () => {
  it('has the command, the machine, every table, the figures and the assumptions', () => {
    const md = paperSection(sampleResult(), meta);
    expect(md).toContain('node dist/cli/main.js bench paper --seed 7');
    expect(md).toContain('2 CPUs (Test CPU)');
    expect(md).toContain('Node.js v20.0.0');
    expect(md).toContain('commit `abc1234`');
    // Equal budget: one row per mode and workload.
    expect(md).toMatch(
      /\| dinomo \| read-only \| \*\*150,000\*\* \| 149,999, 150,000, 150,001 \| 0\.300 \|/,
    );
    expect(md).toMatch(/\| clover \| read-mostly \| \*\*90,000\*\* \|/);
    // Scaling: measured rows with the model next to them, labelled, and a model-only table.
    expect(md).toMatch(/\| dinomo \| 2 \| \*\*120,000\*\* \| [\d,]+ \(model, [+-][\d.]+%\) \|/);
    expect(md).toContain('Model only (not measured)');
    expect(md).toMatch(
      /\| clover \| fdr \| [\d.]+ \|( [\d,]+ \(model\) \|){5} [a-z-]+ \(model\) \|/,
    );
    // Elasticity: the event and its dip.
    expect(md).toContain('| dinomo | add KN 2 | 4.00 | 8,192 | 40 | 30.0 / 35.0 | - | 100,000 |');
    expect(md).toContain('| dinomo | add KN 2 | 0 | 300 | 1,000 | 100,000 |');
    expect(md).toContain('below 50% of the baseline');
    expect(md).toContain('![Scaling](figures/paper-scaling-fdr.svg)');
    expect(md).toContain('- assumption one\n- assumption two\n');
    expect(md.endsWith('\n')).toBe(true);
    expect(md).not.toContain('\n\n\n');
  });

  it('says "no dip" for an event without one', () => {
    const result = sampleResult();
    const first = result.elasticity[0]?.dips[0];
    if (first === undefined) throw new Error('no dips in the sample');
    first.dips = [];
    expect(paperSection(result, meta)).toContain(
      '| dinomo | add KN 2 | no dip | - | - | 100,000 |',
    );
  });
});

describe('paper charts and summary', () => {
  it('draws measured points filled and the model hollow, per mode in one style', () => {
    const result = sampleResult();
    const spec = scalingChart(result, 'fdr', 2);
    expect(spec.series.map((s) => [s.label, s.styleIndex])).toEqual([
      ['dinomo measured', 0],
      ['dinomo model (dotted)', 0],
      ['clover measured', 1],
      ['clover model (dotted)', 1],
    ]);
    const [measured, model] = spec.series;
    expect(measured?.points).toEqual([
      { x: 1, y: 150_000 },
      { x: 2, y: 120_000 },
    ]);
    expect(model?.points.map((p) => p.x)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(model?.points.every((p) => p.modelled === true)).toBe(true);
    expect(spec.note).toContain('not measured');
    const svg = renderLineChart(spec);
    expect(svg).toContain('<svg');
    expect(svg).toContain('point-modelled');
  });

  it('marks events and shades dips on the timeline', () => {
    const result = sampleResult();
    const elastic = result.elasticity[0];
    if (elastic === undefined) throw new Error('no elastic run in the sample');
    const spec = elasticChart(elastic, result.options);
    expect(spec.markers).toEqual([{ x: 4, label: 'add KN 2' }]);
    expect(spec.bands).toEqual([{ fromX: 4, toX: 4.3, label: 'dip 300 ms' }]);
    // With several dips after one event, only the longest is labelled.
    const first = elastic.dips[0];
    if (first === undefined) throw new Error('no dips in the sample');
    first.dips = [
      { startMs: 0, lengthMs: 100, minOpsPerSec: 10, reachesWindowEnd: false },
      { startMs: 300, lengthMs: 500, minOpsPerSec: 10, reachesWindowEnd: false },
      { startMs: 900, lengthMs: 500, minOpsPerSec: 10, reachesWindowEnd: false },
    ];
    expect(elasticChart(elastic, result.options).bands).toEqual([
      { fromX: 4, toX: 4.1 },
      { fromX: 4.3, toX: 4.8, label: 'dip 500 ms' },
      { fromX: 4.9, toX: 5.4 },
    ]);
    expect(renderLineChart(spec)).toContain('dip 300 ms');
  });

  it('prints a summary with the three tables', () => {
    const text = formatPaperSummary(sampleResult());
    expect(text).toContain('Equal cache budget');
    expect(text).toContain('Scaling (read-mostly): measured vs model');
    expect(text).toContain('(model)');
    expect(text).toContain('Elasticity dips');
  });
});
