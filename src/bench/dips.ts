/**
 * Throughput dips after reconfiguration events, found in a fine-grained timeline (`dinomo bench
 * paper`, the elasticity part). Pure: no clocks, no I/O.
 *
 * The definition, for each event at time E (seconds since the run started):
 *
 * - **Baseline**: the median throughput of the `baselineBuckets` buckets that ended at or before E
 *   (fewer if the run had fewer). Without any such bucket, or with a baseline of 0, the event has no
 *   baseline and no dips.
 * - **Window**: the buckets that end after E and no later than the next event (the bucket holding
 *   the next event belongs to that event), or the end of the timeline for the last event.
 * - **Dip**: a maximal run of consecutive window buckets whose throughput is strictly below
 *   `fraction` x baseline. Its start is the start of its first bucket, but never before E; its end
 *   is the end of its last bucket. Both are given relative to E, in milliseconds, so their precision
 *   is one bucket. `minOpsPerSec` is the lowest bucket in it; `reachesWindowEnd` says the dip was
 *   still going on when the window closed (the next event came, or the run ended).
 */

/** One bucket of a timeline: its start in seconds from the start of the run, and its throughput. */
export interface DipSample {
  second: number;
  opsPerSec: number;
}

/** An event the dips are measured from. */
export interface DipEvent {
  /** Seconds from the start of the run (the timeline's 0). */
  atSec: number;
  /** How the event is shown, e.g. "add KN 2". */
  label: string;
}

export interface DipOptions {
  /** Length of every bucket in milliseconds (the last may be cut short by the end of the run). */
  bucketMs: number;
  /** A bucket is in a dip when its throughput is below this fraction of the baseline: (0, 1]. */
  fraction: number;
  /** How many buckets before the event the baseline is the median of (at least 1). */
  baselineBuckets: number;
}

export const dipDefaults = { fraction: 0.5, baselineBuckets: 10 } as const;

export interface Dip {
  /** From the event to the start of the dip, in ms (0 when it starts in the event's bucket). */
  startMs: number;
  /** The dip's length in ms, a whole number of buckets except where the event cuts the first. */
  lengthMs: number;
  /** The lowest bucket's throughput in the dip. */
  minOpsPerSec: number;
  /** True when the dip lasted until the next event or the end of the timeline. */
  reachesWindowEnd: boolean;
}

export interface EventDips {
  event: DipEvent;
  /** Median throughput before the event; null when no bucket ended before it. */
  baselineOpsPerSec: number | null;
  /** fraction x baseline; null without a baseline. */
  thresholdOpsPerSec: number | null;
  /** Buckets the baseline was taken over (may be fewer than asked, near the start of a run). */
  baselineBucketCount: number;
  /** The window searched, relative to the event, in ms. */
  windowEndMs: number;
  dips: Dip[];
}

/**
 * The dips after each event (see the module comment for the definition). Samples must be in time
 * order, one per bucket; events are sorted by time first. Throws RangeError on bad options.
 */
export function detectDips(
  samples: readonly DipSample[],
  events: readonly DipEvent[],
  options: DipOptions,
): EventDips[] {
  checkOptions(options);
  const bucketSec = options.bucketMs / 1000;
  // Bucket ends are compared with a little tolerance: bucket starts like 0.30000000000000004.
  const eps = bucketSec * 1e-6;
  const sorted = [...events].sort((a, b) => a.atSec - b.atSec);
  const lastEnd = samples.length === 0 ? 0 : (samples[samples.length - 1]?.second ?? 0) + bucketSec;
  return sorted.map((event, i) => {
    const at = event.atSec;
    const windowEnd = sorted[i + 1]?.atSec ?? Infinity;
    const before = samples.filter((s) => s.second + bucketSec <= at + eps);
    const baselineSamples = before.slice(-options.baselineBuckets);
    const baseline =
      baselineSamples.length === 0 ? null : median(baselineSamples.map((s) => s.opsPerSec));
    const threshold = baseline === null ? null : baseline * options.fraction;
    const windowSamples = samples.filter(
      (s) => s.second + bucketSec > at + eps && s.second + bucketSec <= windowEnd + eps,
    );
    const windowEndMs = toMs(Math.min(windowEnd, lastEnd) - at);
    const dips: Dip[] = [];
    if (threshold !== null && threshold > 0) {
      let current: { startSec: number; endSec: number; min: number } | null = null;
      const close = (reachesWindowEnd: boolean): void => {
        if (current === null) return;
        const startMs = toMs(Math.max(0, current.startSec - at));
        dips.push({
          startMs,
          lengthMs: toMs(current.endSec - at) - startMs,
          minOpsPerSec: current.min,
          reachesWindowEnd,
        });
        current = null;
      };
      for (const s of windowSamples) {
        if (s.opsPerSec < threshold) {
          if (current === null) current = { startSec: s.second, endSec: 0, min: s.opsPerSec };
          current.endSec = s.second + bucketSec;
          current.min = Math.min(current.min, s.opsPerSec);
        } else {
          close(false);
        }
      }
      close(true);
    }
    return {
      event,
      baselineOpsPerSec: baseline,
      thresholdOpsPerSec: threshold,
      baselineBucketCount: baselineSamples.length,
      windowEndMs,
      dips,
    };
  });
}

function checkOptions(options: DipOptions): void {
  if (!(Number.isFinite(options.bucketMs) && options.bucketMs > 0)) {
    throw new RangeError(`bucketMs must be above 0, got ${options.bucketMs}`);
  }
  if (!(options.fraction > 0 && options.fraction <= 1)) {
    throw new RangeError(`fraction must be in (0, 1], got ${options.fraction}`);
  }
  if (!Number.isInteger(options.baselineBuckets) || options.baselineBuckets < 1) {
    throw new RangeError(
      `baselineBuckets must be a positive integer, got ${options.baselineBuckets}`,
    );
  }
}

/** Seconds to whole milliseconds (bucket arithmetic leaves float noise below a microsecond). */
function toMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

/** The middle value, or the mean of the two middle ones. */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const upper = sorted[mid] ?? 0;
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? 0) + upper) / 2;
}
