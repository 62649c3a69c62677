import { describe, expect, it } from 'vitest';
import {
  formatTickValue,
  niceTicks,
  renderLineChart,
  type LineChartSpec,
} from '../../../src/bench/svg-chart.js';
import { DinomoError } from '../../../src/errors/index.js';

const scalingSpec: LineChartSpec = {
  title: 'Throughput vs KNs',
  xLabel: 'KVS nodes',
  yLabel: 'ops/s',
  xTicks: [1, 2, 4, 8, 16],
  series: [
    {
      label: 'dinomo',
      points: [
        { x: 1, y: 100_000 },
        { x: 2, y: 190_000 },
        { x: 4, y: 370_000 },
        { x: 8, y: 700_000, modelled: true },
        { x: 16, y: 1_300_000, modelled: true },
      ],
    },
    {
      label: 'clover',
      points: [
        { x: 1, y: 80_000 },
        { x: 2, y: 120_000 },
        { x: 4, y: 150_000 },
      ],
    },
    {
      label: 'dinomo-n',
      points: [
        { x: 1, y: 90_000 },
        { x: 4, y: 200_000 },
      ],
    },
  ],
  note: 'hollow points and dotted lines: model',
};

const timelineSpec: LineChartSpec = {
  title: 'Throughput over time',
  xLabel: 'seconds',
  yLabel: 'ops/s',
  series: [
    {
      label: 'dinomo',
      pointMarkers: false,
      points: Array.from({ length: 30 }, (_, s) => ({
        x: s,
        y: s >= 10 && s < 13 ? 40_000 : 90_000,
      })),
    },
  ],
  markers: [
    { x: 10, label: 'KN added' },
    { x: 20, label: 'KN failed' },
  ],
  bands: [{ fromX: 10, toX: 13, label: 'dip 3s' }],
};

/** Every element name in the document, in order, with its kind; enough to check tag balance. */
function checkWellFormed(svg: string): void {
  const stack: string[] = [];
  for (const match of svg.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = match;
    if (name === undefined) continue;
    if (selfClosing === '/') continue;
    if (closing === '/') expect(stack.pop()).toBe(name);
    else stack.push(name);
  }
  expect(stack).toEqual([]);
}

function count(haystack: string, needle: string | RegExp): number {
  const pattern = typeof needle === 'string' ? new RegExp(escapeRegExp(needle), 'g') : needle;
  return [...haystack.matchAll(pattern)].length;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function errorOf(run: () => unknown): DinomoError {
  try {
    run();
  } catch (err) {
    if (err instanceof DinomoError) return err;
    throw err;
  }
  throw new Error('expected a DinomoError');
}

/** The y pixel of the top and bottom of the plot, read from the y axis line. */
function plotVerticalExtent(svg: string): { top: number; bottom: number } {
  const match = /<line x1="[\d.]+" y1="([\d.]+)" x2="[\d.]+" y2="([\d.]+)" class="y-axis"/.exec(
    svg,
  );
  expect(match).not.toBeNull();
  return { top: Number(match?.[1]), bottom: Number(match?.[2]) };
}

describe('renderLineChart', () => {
  it('produces a standalone, well-formed SVG document with a viewBox', () => {
    const svg = renderLineChart(scalingSpec);
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('viewBox="0 0 720 420"');
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    checkWellFormed(svg);
    checkWellFormed(renderLineChart(timelineSpec));
  });

  it('honours the requested size', () => {
    const svg = renderLineChart({ ...scalingSpec, widthPx: 800, heightPx: 300 });
    expect(svg).toContain('width="800" height="300" viewBox="0 0 800 300"');
  });

  it('draws one solid-or-patterned line per series, each with its own colour and dash', () => {
    const svg = renderLineChart(scalingSpec);
    const lines = [...svg.matchAll(/<path class="series-line"[^>]*>/g)].map((m) => m[0]);
    expect(lines).toHaveLength(3);
    const colours = lines.map((l) => /stroke="(#[0-9A-Fa-f]{6})"/.exec(l)?.[1]);
    expect(new Set(colours).size).toBe(3);
    const dashes = lines.map((l) => /stroke-dasharray="([^"]*)"/.exec(l)?.[1] ?? 'solid');
    expect(new Set(dashes).size).toBe(3);
  });

  it('draws a series with styleIndex in the colour and dash of that position', () => {
    const spec: LineChartSpec = {
      ...scalingSpec,
      series: [
        {
          label: 'a measured',
          points: [
            { x: 1, y: 1 },
            { x: 2, y: 2 },
          ],
        },
        {
          label: 'b measured',
          points: [
            { x: 1, y: 2 },
            { x: 2, y: 3 },
          ],
        },
        {
          label: 'a again',
          points: [
            { x: 1, y: 3 },
            { x: 2, y: 4 },
          ],
          styleIndex: 0,
        },
      ],
    };
    const svg = renderLineChart(spec);
    const lines = [...svg.matchAll(/<path class="series-line"[^>]*>/g)].map((m) => m[0]);
    const colours = lines.map((l) => /stroke="(#[0-9A-Fa-f]{6})"/.exec(l)?.[1]);
    expect(colours[2]).toBe(colours[0]);
    expect(colours[1]).not.toBe(colours[0]);
    expect(lines[2]?.replace(/d="[^"]*"/, '')).toBe(lines[0]?.replace(/d="[^"]*"/, ''));
    const bad = { ...spec, series: [{ label: 'x', points: [], styleIndex: -1 }] };
    expect(() => renderLineChart(bad)).toThrow(/styleIndex/);
  });

  it('lists every series label in the legend', () => {
    const svg = renderLineChart(scalingSpec);
    const legend = /<g class="legend">[\s\S]*?<\/g>/.exec(svg)?.[0] ?? '';
    for (const label of ['dinomo', 'clover', 'dinomo-n']) expect(legend).toContain(`>${label}<`);
    expect(count(legend, 'class="legend-label"')).toBe(3);
    // The longest label must fit inside the document at roughly 7 px per character.
    const longest = /<text x="([\d.]+)"[^>]*>dinomo-n</.exec(legend)?.[1];
    expect(Number(longest) + 7 * 'dinomo-n'.length).toBeLessThanOrEqual(720);
  });

  it('escapes text everywhere and never lets raw special characters through', () => {
    const nasty = `a<&>"'b`;
    const svg = renderLineChart({
      ...scalingSpec,
      title: nasty,
      xLabel: nasty,
      yLabel: nasty,
      note: nasty,
      series: [{ label: nasty, points: [{ x: 1, y: 1 }] }],
      markers: [{ x: 1, label: nasty }],
      bands: [{ fromX: 1, toX: 2, label: nasty }],
    });
    expect(svg).not.toContain('<&>');
    expect(svg).toContain('a&lt;&amp;&gt;&quot;&apos;b');
    // 1 title element + 1 visible title + axis titles + legend + marker + band + note.
    expect(count(svg, 'a&lt;&amp;&gt;&quot;&apos;b')).toBe(8);
    // Every ampersand starts one of the five entities.
    expect(svg).not.toMatch(/&(?!(amp|lt|gt|quot|apos);)/);
    checkWellFormed(svg);
  });

  it('draws markers as dashed vertical lines with their labels', () => {
    const svg = renderLineChart(timelineSpec);
    const markers = [...svg.matchAll(/<line ([^>]*) class="marker"[^>]*>/g)].map((m) => m[0]);
    expect(markers).toHaveLength(2);
    for (const marker of markers) {
      expect(marker).toContain('stroke-dasharray');
      const x1 = /x1="([\d.]+)"/.exec(marker)?.[1];
      const x2 = /x2="([\d.]+)"/.exec(marker)?.[1];
      expect(x1).toBe(x2);
    }
    expect(svg).toMatch(/class="marker-label"[^>]*>KN added</);
    expect(svg).toMatch(/class="marker-label"[^>]*>KN failed</);
  });

  it('draws bands as translucent rectangles behind the lines, with their labels', () => {
    const svg = renderLineChart(timelineSpec);
    const band = /<rect class="band"[^>]*>/.exec(svg)?.[0] ?? '';
    expect(band).toContain('fill-opacity="0.2"');
    expect(Number(/width="([\d.]+)"/.exec(band)?.[1])).toBeGreaterThan(0);
    expect(svg).toMatch(/class="band-label"[^>]*>dip 3s</);
    expect(svg.indexOf('class="band"')).toBeLessThan(svg.indexOf('class="series-line"'));
  });

  it('draws modelled points hollow with a dotted segment into them, measured points filled', () => {
    const svg = renderLineChart(scalingSpec);
    const hollow = [...svg.matchAll(/<circle class="point-modelled"[^>]*>/g)].map((m) => m[0]);
    expect(hollow).toHaveLength(2);
    for (const circle of hollow) expect(circle).toMatch(/fill="(#ffffff|none|white)"/);
    const filled = [...svg.matchAll(/<circle class="point" [^>]*>/g)].map((m) => m[0]);
    expect(filled).toHaveLength(3 + 3 + 2);
    for (const circle of filled) expect(circle).not.toMatch(/fill="(#ffffff|none|white)"/);

    const model = /<path class="model-line" d="([^"]*)"[^>]*>/.exec(svg);
    expect(model?.[0]).toContain('stroke-dasharray');
    // Two segments (4 -> 8 and 8 -> 16) in one subpath: one move and two lines.
    expect(count(model?.[1] ?? '', /M/g)).toBe(1);
    expect(count(model?.[1] ?? '', /L/g)).toBe(2);
  });

  it('breaks the measured line around a modelled point', () => {
    const svg = renderLineChart({
      ...scalingSpec,
      series: [
        {
          label: 'gap',
          points: [
            { x: 1, y: 1 },
            { x: 2, y: 2, modelled: true },
            { x: 3, y: 3 },
            { x: 4, y: 4 },
          ],
        },
      ],
    });
    const measured = /<path class="series-line" d="([^"]*)"/.exec(svg)?.[1] ?? '';
    const modelled = /<path class="model-line" d="([^"]*)"/.exec(svg)?.[1] ?? '';
    expect(count(measured, /M/g)).toBe(1);
    expect(count(measured, /L/g)).toBe(2);
    expect(count(modelled, /L/g)).toBe(1);
  });

  it('leaves out measured point circles when pointMarkers is false', () => {
    const svg = renderLineChart(timelineSpec);
    expect(count(svg, '<circle class="point"')).toBe(0);
    expect(count(svg, 'class="series-line"')).toBe(1);
  });

  it('is deterministic', () => {
    expect(renderLineChart(scalingSpec)).toBe(renderLineChart(structuredClone(scalingSpec)));
    expect(renderLineChart(timelineSpec)).toBe(renderLineChart(timelineSpec));
  });

  it('rounds coordinates to at most one decimal place', () => {
    const svg = renderLineChart({ ...timelineSpec, widthPx: 733, heightPx: 411 });
    const coordinateAttrs =
      /\s(x|y|x1|x2|y1|y2|cx|cy|r|width|height|d|transform|viewBox)="([^"]*)"/g;
    const values = [...svg.matchAll(coordinateAttrs)].map((m) => m[2] ?? '');
    expect(values.length).toBeGreaterThan(50);
    for (const value of values) expect(value).not.toMatch(/\d\.\d\d/);
  });

  it('maps a known point into the plot area: max y near the top, y = 0 on the x axis', () => {
    const svg = renderLineChart({
      title: 't',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          label: 's',
          points: [
            { x: 0, y: 0 },
            { x: 10, y: 1000 },
          ],
        },
      ],
    });
    const { top, bottom } = plotVerticalExtent(svg);
    const circles = [...svg.matchAll(/<circle class="point" cx="([\d.]+)" cy="([\d.]+)"/g)];
    const [low, high] = circles.map((m) => ({ cx: Number(m[1]), cy: Number(m[2]) }));
    expect(low?.cy).toBeCloseTo(bottom, 0);
    expect(high?.cy).toBeCloseTo(top, 0);
    expect(high?.cx).toBeGreaterThan(low?.cx ?? Infinity);
  });

  it('renders axes and "no data" when there are no series', () => {
    const svg = renderLineChart({ title: 'empty', xLabel: 'x', yLabel: 'y', series: [] });
    expect(svg).toContain('class="x-axis"');
    expect(svg).toContain('class="y-axis"');
    expect(svg).toMatch(/class="no-data"[^>]*>no data</);
    checkWellFormed(svg);
  });

  it('handles series with no or one point and all-equal y values', () => {
    const svg = renderLineChart({
      title: 'edges',
      xLabel: 'x',
      yLabel: 'y',
      yMin: 5,
      series: [
        { label: 'empty', points: [] },
        { label: 'single', points: [{ x: 3, y: 5 }] },
        {
          label: 'flat',
          points: [
            { x: 3, y: 5 },
            { x: 3, y: 5 },
          ],
        },
      ],
    });
    expect(svg).not.toContain('NaN');
    expect(svg).not.toContain('Infinity');
    expect(svg).not.toContain('no data');
    expect(count(svg, 'class="legend-label"')).toBe(3);
    checkWellFormed(svg);
    const allZero = renderLineChart({
      title: 'zero',
      xLabel: 'x',
      yLabel: 'y',
      series: [{ label: 'z', points: [{ x: 0, y: 0 }] }],
    });
    expect(allZero).not.toContain('NaN');
  });

  it('rejects NaN and negative values, naming the series and the point index', () => {
    const nan = errorOf(() =>
      renderLineChart({
        ...scalingSpec,
        series: [
          {
            label: 'clover',
            points: [
              { x: 1, y: 1 },
              { x: 2, y: Number.NaN },
            ],
          },
        ],
      }),
    );
    expect(nan.code).toBe('INVALID_OPTION');
    expect(nan.message).toContain('series "clover" point 1 y');
    expect(nan.message).toContain('NaN');

    const negative = errorOf(() =>
      renderLineChart({ ...scalingSpec, series: [{ label: 'neg', points: [{ x: -1, y: 1 }] }] }),
    );
    expect(negative.message).toContain('series "neg" point 0 x');
  });

  it('rejects bad markers, bands and sizes', () => {
    const base = { title: 't', xLabel: 'x', yLabel: 'y', series: [] };
    expect(() => renderLineChart({ ...base, markers: [{ x: Infinity, label: 'm' }] })).toThrow(
      /marker 0/,
    );
    expect(() => renderLineChart({ ...base, bands: [{ fromX: 5, toX: 2 }] })).toThrow(/band 0/);
    expect(() => renderLineChart({ ...base, widthPx: 10 })).toThrow(/widthPx/);
  });
});

describe('niceTicks', () => {
  it('gives round ticks for 0..97', () => {
    expect(niceTicks(0, 97, 5)).toEqual([0, 20, 40, 60, 80, 100]);
  });

  const ranges: [number, number, number][] = [
    [0, 97, 5],
    [0, 1_234_567, 5],
    [1, 16, 6],
    [0.3, 0.7, 4],
    [3, 3, 5],
    [0, 0, 5],
    [-12, 47, 5],
    [0, 0.0042, 3],
    [999, 1001, 5],
  ];
  it.each(ranges)(
    'is evenly spaced, covers [%d, %d] and steps by 1, 2 or 5 times 10^k',
    (lo, hi, k) => {
      const ticks = niceTicks(lo, hi, k);
      expect(ticks.length).toBeGreaterThanOrEqual(2);
      expect(ticks.length).toBeLessThanOrEqual(3 * k + 1);
      const first = ticks[0] ?? Number.NaN;
      const last = ticks[ticks.length - 1] ?? Number.NaN;
      const step = (ticks[1] ?? Number.NaN) - first;
      const tolerance = step * 1e-6;
      expect(first).toBeLessThanOrEqual(lo + tolerance);
      expect(last).toBeGreaterThanOrEqual(hi - tolerance);
      for (let i = 1; i < ticks.length; i++) {
        expect((ticks[i] ?? Number.NaN) - (ticks[i - 1] ?? Number.NaN)).toBeCloseTo(step, 9);
      }
      const mantissa = step / 10 ** Math.floor(Math.log10(step));
      expect([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6)).toBe(true);
    },
  );

  it('rejects non-finite and reversed ranges', () => {
    expect(() => niceTicks(Number.NaN, 1, 5)).toThrow(DinomoError);
    expect(() => niceTicks(5, 1, 5)).toThrow(/below min/);
    expect(() => niceTicks(0, 1, 0)).toThrow(/targetCount/);
  });
});

describe('formatTickValue', () => {
  it.each([
    [0, '0'],
    [0.5, '0.5'],
    [12, '12'],
    [999, '999'],
    [1000, '1k'],
    [1200, '1.2k'],
    [10_050, '10.05k'],
    [250_000, '250k'],
    [999_950, '1M'],
    [3_400_000, '3.4M'],
    [2_000_000_000, '2G'],
    [-1500, '-1.5k'],
    [-0, '0'],
  ])('formats %d as %s', (value, expected) => {
    expect(formatTickValue(value)).toBe(expected);
  });
});
