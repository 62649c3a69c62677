import { build, type Histogram } from 'hdr-histogram-js';

export type { Histogram } from 'hdr-histogram-js';

/** Latency percentiles in microseconds. */
export interface LatencySummary {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  count: number;
}

/**
 * A latency histogram in microseconds, 3 significant digits. The pure JavaScript implementation is used
 * (no WebAssembly): it runs everywhere Node 20 does, and recording costs well under a microsecond, far
 * below an operation's latency. It resizes itself, so a stalled operation of minutes still records.
 */
export function createLatencyHistogram(): Histogram {
  return build({
    useWebAssembly: false,
    bitBucketSize: 32,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
  });
}

/** Records a duration, rounded to whole microseconds; a clock that went backwards records 0. */
export function recordLatencyUs(histogram: Histogram, latencyUs: number): void {
  histogram.recordValue(latencyUs > 0 ? Math.round(latencyUs) : 0);
}

export function summarizeLatency(histogram: Histogram): LatencySummary {
  const count = histogram.totalCount;
  if (count === 0) return { p50: 0, p99: 0, p999: 0, max: 0, mean: 0, count: 0 };
  return {
    p50: histogram.getValueAtPercentile(50),
    p99: histogram.getValueAtPercentile(99),
    p999: histogram.getValueAtPercentile(99.9),
    max: histogram.maxValue,
    mean: Math.round(histogram.mean * 10) / 10,
    count,
  };
}
