/**
 * Dependency-free SVG line charts for the benchmark report: throughput against KVS nodes (measured
 * and modelled points) and throughput over time with reconfiguration markers and shaded dips.
 *
 * The output is a standalone SVG 1.1 document. It is deterministic (the same spec always gives the
 * same bytes, so regenerated docs only change when the data does), every piece of text is
 * XML-escaped, and every coordinate is rounded to one decimal place to keep the files small and
 * diffs readable.
 */
import { DinomoError } from '../errors/index.js';

/** One data point. Values must be finite and non-negative: the charts plot counts and rates. */
export interface ChartPoint {
  x: number;
  y: number;
  /** A model prediction rather than a measurement: drawn hollow, and the segment into it dotted. */
  modelled?: boolean;
}

export interface ChartSeries {
  label: string;
  /** Drawn in ascending x order; ties keep the order given. */
  points: readonly ChartPoint[];
  /**
   * Whether measured points get a filled circle (default true). Turn it off for dense time series,
   * where circles would hide the line; modelled points are always drawn so they stay recognisable.
   */
  pointMarkers?: boolean;
  /**
   * Draw with the colour and dash of the series at this position instead of its own, so that two
   * series (say a mode's measured points and its model) share a look. Default: its own position.
   */
  styleIndex?: number;
}

/** A vertical dashed line at `x` with a rotated label running down from the top of the plot. */
export interface ChartMarker {
  x: number;
  label: string;
}

/** A translucent vertical band from `fromX` to `toX`, drawn behind the lines, labelled at the bottom. */
export interface ChartBand {
  fromX: number;
  toX: number;
  label?: string;
}

export interface LineChartSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  markers?: readonly ChartMarker[];
  bands?: readonly ChartBand[];
  /** Document width in pixels (default 720, at least 240). */
  widthPx?: number;
  /** Document height in pixels (default 420, at least 180). */
  heightPx?: number;
  /** Explicit x ticks, e.g. KN counts [1, 2, 4, 8, 16]; default: nice ticks from the data range. */
  xTicks?: readonly number[];
  /**
   * Where the y axis starts (default 0), rounded down to a nice tick. Data below it moves the start
   * down rather than being drawn outside the plot.
   */
  yMin?: number;
  /** Small text under the plot, e.g. "hollow points and dotted lines: model". */
  note?: string;
}

const defaultWidthPx = 720;
const defaultHeightPx = 420;
const minWidthPx = 240;
const minHeightPx = 180;

/** Okabe-Ito colours: distinguishable with the common colour-vision deficiencies. Yellow is left out
 * because it vanishes on a white background. */
const palette = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

/**
 * One dash pattern per series so the lines still differ in greyscale print. None of them is made of
 * dots, because dots (round caps on near-zero dashes) are reserved for segments into modelled points.
 */
const seriesDashes = ['', '12 5', '6 4', '16 4 5 4', '20 6', '9 3 9 8'];
const modelDash = '0.1 5';

const margin = { top: 40, left: 70, bottom: 50, note: 18 } as const;
const legendEntryPx = 20;
const approxCharPx = 7;
const pointRadiusPx = 3.5;

interface Box {
  width: number;
  height: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface Axis {
  ticks: readonly number[];
  toPx: (value: number) => number;
}

interface Frame {
  box: Box;
  x: Axis;
  y: Axis;
}

/**
 * Renders a line chart as a complete standalone SVG document (starting with `<svg`, ending with a
 * newline). Throws DinomoError INVALID_OPTION when a value is not finite or negative, naming the
 * series (or marker, band) and the index of the offending entry.
 */
export function renderLineChart(spec: LineChartSpec): string {
  validateSpec(spec);
  const frame = buildFrame(spec);
  const series = spec.series.map((s) => ({ ...s, points: sortedByX(s.points) }));
  const hasData = series.some((s) => s.points.length > 0);
  const parts = [
    openSvg(frame.box, spec.title),
    renderGrid(frame),
    ...(spec.bands ?? []).map((band) => renderBand(frame, band)),
    renderAxes(frame, spec),
    ...(spec.markers ?? []).map((marker) => renderMarker(frame, marker)),
    ...series.map((s, i) => renderSeries(frame, s, i, s.styleIndex ?? i)),
    hasData ? '' : renderNoData(frame.box),
    renderLegend(frame.box, spec.series),
    spec.note === undefined ? '' : renderNote(frame.box, spec.note),
    '</svg>',
  ];
  return parts.filter((part) => part !== '').join('\n') + '\n';
}

/**
 * Evenly spaced ticks whose step is 1, 2 or 5 times a power of ten, the first at or below `min` and
 * the last at or above `max`, aiming for about `targetCount` intervals. A zero range is widened
 * first (0 becomes [0, 1]; any other value v becomes v plus or minus its order of magnitude), so the
 * result always has at least two ticks.
 */
export function niceTicks(min: number, max: number, targetCount: number): number[] {
  requireFinite(min, 'niceTicks min');
  requireFinite(max, 'niceTicks max');
  requireFinite(targetCount, 'niceTicks targetCount');
  if (max < min) invalid(`niceTicks: max ${max} is below min ${min}`);
  if (targetCount < 1) invalid(`niceTicks: targetCount ${targetCount} is below 1`);
  const [lo, hi] = min === max ? widenDegenerate(min) : [min, max];
  const step = niceStep((hi - lo) / Math.round(targetCount));
  // Ticks are rounded to the step's decimals so 0.1 + 0.2 style float noise never reaches a label.
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  // The small tolerance stops float noise (0.3 / 0.1 = 2.9999...) from adding an extra empty tick.
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)) + 0);
  return ticks;
}

const tickUnits = [
  { divisor: 1e12, suffix: 'T' },
  { divisor: 1e9, suffix: 'G' },
  { divisor: 1e6, suffix: 'M' },
  { divisor: 1e3, suffix: 'k' },
] as const;

/**
 * A short axis label: 1200 gives "1.2k", 3_400_000 gives "3.4M", 0.5 gives "0.5". Four significant
 * digits keep neighbouring nice ticks (10k, 10.05k) apart; non-finite values print as themselves.
 */
export function formatTickValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  for (const unit of tickUnits) {
    // The unit is chosen after rounding, so 999_950 becomes "1M" rather than "1000k".
    const scaled = Number((Math.abs(value) / unit.divisor).toPrecision(4));
    if (scaled >= 1) return `${value < 0 ? '-' : ''}${String(scaled)}${unit.suffix}`;
  }
  return String(Number(value.toPrecision(4)));
}

// ---- validation -------------------------------------------------------------------------------

function invalid(message: string): never {
  throw new DinomoError('INVALID_OPTION', message);
}

function requireFinite(value: number, what: string): void {
  if (!Number.isFinite(value)) invalid(`${what} is ${String(value)}; it must be a finite number`);
}

function requireChartValue(value: number, what: string): void {
  requireFinite(value, what);
  if (value < 0) invalid(`${what} is ${value}; chart values must not be negative`);
}

function validateSpec(spec: LineChartSpec): void {
  if (spec.widthPx !== undefined) requireAtLeast(spec.widthPx, minWidthPx, 'widthPx');
  if (spec.heightPx !== undefined) requireAtLeast(spec.heightPx, minHeightPx, 'heightPx');
  if (spec.yMin !== undefined) requireFinite(spec.yMin, 'yMin');
  spec.xTicks?.forEach((tick, i) => requireFinite(tick, `xTicks[${i}]`));
  spec.series.forEach(validateSeries);
  spec.markers?.forEach((m, i) => requireChartValue(m.x, `marker ${i} ("${m.label}") x`));
  spec.bands?.forEach(validateBand);
}

function requireAtLeast(value: number, least: number, what: string): void {
  requireFinite(value, what);
  if (value < least) invalid(`${what} is ${value}; it must be at least ${least}`);
}

function validateSeries(series: ChartSeries): void {
  series.points.forEach((point, i) => {
    const where = `series "${series.label}" point ${i}`;
    requireChartValue(point.x, `${where} x`);
    requireChartValue(point.y, `${where} y`);
  });
  const style = series.styleIndex;
  if (style !== undefined && !(Number.isInteger(style) && style >= 0)) {
    invalid(`series "${series.label}" styleIndex must be a non-negative integer, got ${style}`);
  }
}

function validateBand(band: ChartBand, index: number): void {
  const where = `band ${index}${band.label === undefined ? '' : ` ("${band.label}")`}`;
  requireChartValue(band.fromX, `${where} fromX`);
  requireChartValue(band.toX, `${where} toX`);
  if (band.toX < band.fromX) invalid(`${where}: toX ${band.toX} is before fromX ${band.fromX}`);
}

// ---- scales and layout ------------------------------------------------------------------------

function niceStep(rough: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const normalised = rough / magnitude;
  const factor = normalised <= 1 ? 1 : normalised <= 2 ? 2 : normalised <= 5 ? 5 : 10;
  return factor * magnitude;
}

function widenDegenerate(value: number): [number, number] {
  if (value === 0) return [0, 1];
  const magnitude = 10 ** Math.floor(Math.log10(Math.abs(value)));
  return [value - magnitude, value + magnitude];
}

function sortedByX(points: readonly ChartPoint[]): ChartPoint[] {
  // Array.prototype.sort is stable, so points with equal x keep the caller's order.
  return [...points].sort((a, b) => a.x - b.x);
}

function buildFrame(spec: LineChartSpec): Frame {
  const box = layoutBox(spec);
  const points = spec.series.flatMap((s) => s.points);
  const x = xAxis(spec, points, box);
  const y = yAxis(spec, points, box);
  return { box, x, y };
}

function layoutBox(spec: LineChartSpec): Box {
  const width = spec.widthPx ?? defaultWidthPx;
  const height = spec.heightPx ?? defaultHeightPx;
  // The legend sits right of the plot: a gap, the line sample, then the label, so its width follows
  // the longest label (estimated per character, as no fonts are measured), capped so the plot keeps
  // most of the document.
  const longest = Math.max(0, ...spec.series.map((s) => s.label.length));
  const legendPx = Math.min(Math.max(110, 64 + longest * approxCharPx), width * 0.4);
  const bottomPx = margin.bottom + (spec.note === undefined ? 0 : margin.note);
  return {
    width,
    height,
    left: margin.left,
    top: margin.top,
    right: width - legendPx,
    bottom: height - bottomPx,
  };
}

function xAxis(spec: LineChartSpec, points: readonly ChartPoint[], box: Box): Axis {
  const values = [
    ...points.map((p) => p.x),
    ...(spec.markers ?? []).map((m) => m.x),
    ...(spec.bands ?? []).flatMap((b) => [b.fromX, b.toX]),
  ];
  const given = spec.xTicks ?? [];
  if (given.length > 0) {
    const [lo, hi] = spanOf([...values, ...given]);
    return { ticks: given, toPx: linear(lo, hi, box.left, box.right) };
  }
  const [lo, hi] = values.length > 0 ? spanOf(values) : [0, 1];
  return ticksAxis(niceTicks(lo, hi, 6), box.left, box.right);
}

function yAxis(spec: LineChartSpec, points: readonly ChartPoint[], box: Box): Axis {
  const values = points.map((p) => p.y);
  const start = Math.min(spec.yMin ?? 0, ...values);
  const top = Math.max(start, ...values);
  // The y pixel range is reversed: larger values sit higher up the document.
  return ticksAxis(niceTicks(start, top, 5), box.bottom, box.top);
}

function ticksAxis(ticks: readonly number[], fromPx: number, toPx: number): Axis {
  const lo = ticks[0] ?? 0;
  const hi = ticks[ticks.length - 1] ?? 1;
  return { ticks, toPx: linear(lo, hi, fromPx, toPx) };
}

/** The min and max of a non-empty list, widened when they coincide so a scale never divides by 0. */
function spanOf(values: readonly number[]): [number, number] {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? widenDegenerate(lo) : [lo, hi];
}

function linear(lo: number, hi: number, fromPx: number, toPx: number): (value: number) => number {
  return (value) => fromPx + ((value - lo) / (hi - lo)) * (toPx - fromPx);
}

// ---- drawing ----------------------------------------------------------------------------------

/** Escapes the five XML special characters, so labels can never break out of text or attributes. */
function esc(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** A coordinate with at most one decimal; `+ 0` turns -0 into 0 so it never prints as "-0". */
function n(value: number): string {
  return String(Math.round(value * 10) / 10 + 0);
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${n(x)}" y="${n(y)}"${attrs}>${esc(content)}</text>`;
}

function line(x1: number, y1: number, x2: number, y2: number, attrs: string): string {
  return `<line x1="${n(x1)}" y1="${n(y1)}" x2="${n(x2)}" y2="${n(y2)}"${attrs}/>`;
}

function openSvg(box: Box, title: string): string {
  const { width: w, height: h } = box;
  const root =
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${n(w)}" height="${n(h)}"` +
    ` viewBox="0 0 ${n(w)} ${n(h)}" font-family="sans-serif" font-size="12" fill="#222222">`;
  const centre = (box.left + box.right) / 2;
  return [
    root,
    `<title>${esc(title)}</title>`,
    `<rect x="0" y="0" width="${n(w)}" height="${n(h)}" fill="#ffffff"/>`,
    text(
      centre,
      22,
      title,
      ' class="chart-title" text-anchor="middle" font-size="15" font-weight="bold"',
    ),
  ].join('\n');
}

function renderGrid({ box, x, y }: Frame): string {
  const grid = ' class="grid" stroke="#e6e6e6" stroke-width="1"';
  const vertical = x.ticks.map((t) => line(x.toPx(t), box.top, x.toPx(t), box.bottom, grid));
  const horizontal = y.ticks.map((t) => line(box.left, y.toPx(t), box.right, y.toPx(t), grid));
  return [...vertical, ...horizontal].join('\n');
}

function renderAxes({ box, x, y }: Frame, spec: LineChartSpec): string {
  const axis = ' stroke="#444444" stroke-width="1"';
  const xTicks = x.ticks.flatMap((t) => [
    line(x.toPx(t), box.bottom, x.toPx(t), box.bottom + 5, axis),
    text(x.toPx(t), box.bottom + 18, formatTickValue(t), ' text-anchor="middle"'),
  ]);
  const yTicks = y.ticks.flatMap((t) => [
    line(box.left - 5, y.toPx(t), box.left, y.toPx(t), axis),
    text(box.left - 8, y.toPx(t) + 4, formatTickValue(t), ' text-anchor="end"'),
  ]);
  const middleY = (box.top + box.bottom) / 2;
  return [
    line(box.left, box.bottom, box.right, box.bottom, ` class="x-axis"${axis}`),
    line(box.left, box.top, box.left, box.bottom, ` class="y-axis"${axis}`),
    ...xTicks,
    ...yTicks,
    text(
      (box.left + box.right) / 2,
      box.bottom + 38,
      spec.xLabel,
      ' class="x-label" text-anchor="middle"',
    ),
    `<text class="y-label" transform="translate(18 ${n(middleY)}) rotate(-90)" text-anchor="middle">` +
      `${esc(spec.yLabel)}</text>`,
  ].join('\n');
}

function renderBand({ box, x }: Frame, band: ChartBand): string {
  const from = x.toPx(band.fromX);
  const to = x.toPx(band.toX);
  const rect =
    `<rect class="band" x="${n(from)}" y="${n(box.top)}" width="${n(to - from)}"` +
    ` height="${n(box.bottom - box.top)}" fill="#888888" fill-opacity="0.2"/>`;
  if (band.label === undefined) return rect;
  // Left-aligned just inside the band, so the label starts clear of a marker at the band's start.
  const attrs = ' class="band-label" font-size="10" fill="#555555"';
  return `${rect}\n${text(from + 3, box.bottom - 6, band.label, attrs)}`;
}

function renderMarker({ box, x }: Frame, marker: ChartMarker): string {
  const px = x.toPx(marker.x);
  const stroke = ' class="marker" stroke="#555555" stroke-width="1" stroke-dasharray="4 3"';
  // Rotated so neighbouring events do not overlap; anchored at its end, the label runs down from
  // the top of the plot just left of its line.
  const label =
    `<text class="marker-label" transform="translate(${n(px - 4)} ${n(box.top + 4)}) rotate(-90)"` +
    ` text-anchor="end" font-size="10" fill="#555555">${esc(marker.label)}</text>`;
  return `${line(px, box.top, px, box.bottom, stroke)}\n${label}`;
}

function renderSeries(frame: Frame, series: ChartSeries, index: number, style: number): string {
  const colour = seriesColour(style);
  const xy = series.points.map((p) => [frame.x.toPx(p.x), frame.y.toPx(p.y)] as const);
  const measured = pathData(xy, (i) => series.points[i]?.modelled !== true);
  const modelled = pathData(xy, (i) => series.points[i]?.modelled === true);
  const stroke = ` fill="none" stroke="${colour}" stroke-width="2" stroke-linejoin="round"`;
  const dash = seriesDash(style);
  const parts = [
    `<g class="series series-${index}">`,
    measured === '' ? '' : `<path class="series-line" d="${measured}"${stroke}${dash}/>`,
    modelled === '' ? '' : modelPath(modelled, stroke),
    ...series.points.map((p, i) => renderPoint(xy[i], p, colour, series.pointMarkers !== false)),
    '</g>',
  ];
  return parts.filter((part) => part !== '').join('\n');
}

function modelPath(d: string, stroke: string): string {
  return `<path class="model-line" d="${d}"${stroke} stroke-linecap="round" stroke-dasharray="${modelDash}"/>`;
}

/**
 * Path data for the segments whose end point passes `into` (segment i runs from point i - 1 to
 * point i). Consecutive segments share one subpath so dash patterns flow across the joins.
 */
function pathData(
  xy: readonly (readonly [number, number])[],
  into: (i: number) => boolean,
): string {
  const commands: string[] = [];
  let open = false;
  for (let i = 1; i < xy.length; i++) {
    const from = xy[i - 1];
    const to = xy[i];
    if (from === undefined || to === undefined || !into(i)) {
      open = false;
      continue;
    }
    if (!open) commands.push(`M${n(from[0])} ${n(from[1])}`);
    commands.push(`L${n(to[0])} ${n(to[1])}`);
    open = true;
  }
  return commands.join(' ');
}

function renderPoint(
  xy: readonly [number, number] | undefined,
  point: ChartPoint,
  colour: string,
  markMeasured: boolean,
): string {
  if (xy === undefined) return '';
  const at = `cx="${n(xy[0])}" cy="${n(xy[1])}" r="${pointRadiusPx}"`;
  if (point.modelled === true) {
    // A white fill, not "none", so the line underneath does not show through the hollow circle.
    return `<circle class="point-modelled" ${at} fill="#ffffff" stroke="${colour}" stroke-width="1.5"/>`;
  }
  return markMeasured ? `<circle class="point" ${at} fill="${colour}" stroke="${colour}"/>` : '';
}

function seriesColour(index: number): string {
  return palette[index % palette.length] ?? '#000000';
}

function seriesDash(index: number): string {
  const dash = seriesDashes[index % seriesDashes.length] ?? '';
  return dash === '' ? '' : ` stroke-dasharray="${dash}"`;
}

function renderLegend(box: Box, series: readonly ChartSeries[]): string {
  const x0 = box.right + 16;
  const entries = series.map((s, i) => {
    const y = box.top + 8 + i * legendEntryPx;
    const style = s.styleIndex ?? i;
    const colour = seriesColour(style);
    const stroke = ` stroke="${colour}" stroke-width="2"${seriesDash(style)}`;
    return [
      line(x0, y, x0 + 28, y, stroke),
      `<circle cx="${n(x0 + 14)}" cy="${n(y)}" r="${pointRadiusPx}" fill="${colour}"/>`,
      text(x0 + 36, y + 4, s.label, ' class="legend-label"'),
    ].join('\n');
  });
  return ['<g class="legend">', ...entries, '</g>'].join('\n');
}

function renderNoData(box: Box): string {
  const attrs = ' class="no-data" text-anchor="middle" font-size="14" fill="#888888"';
  return text((box.left + box.right) / 2, (box.top + box.bottom) / 2, 'no data', attrs);
}

function renderNote(box: Box, note: string): string {
  return text(box.left, box.height - 8, note, ' class="note" font-size="11" fill="#555555"');
}
