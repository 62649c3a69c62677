import { createLatencyHistogram, recordLatencyUs, type Histogram } from './histogram.js';

const secondUs = 1_000_000;

/**
 * One second of a run (or one report period, for a recorder with longer buckets). The last one also
 * holds the operations that finished while draining.
 */
export interface TimelinePoint {
  /** Seconds from the start of the measured phase to the start of this bucket (0 is the first). */
  second: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  errors: number;
}

/**
 * Buckets completions by the second (or `bucketUs`) they finished in, so the timeline needs no timer
 * and comes out the same on a virtual clock. A bucket without completions still gets a point (with
 * 0 ops/s), which is what a stall should look like. `onPoint` sees each point as its bucket closes: on
 * the first completion after it, on `advance`, or on `finish`.
 */
export class TimelineRecorder {
  private readonly points: TimelinePoint[] = [];
  private readonly histogram: Histogram = createLatencyHistogram();
  private readonly lastBucket: number;
  private bucket = 0;
  private bucketOps = 0;
  private bucketErrors = 0;

  constructor(
    private readonly startUs: number,
    durationUs: number,
    private readonly bucketUs: number = secondUs,
    private readonly onPoint?: (point: TimelinePoint) => void,
  ) {
    this.lastBucket = Math.max(0, Math.ceil(durationUs / bucketUs) - 1);
  }

  /** The start of the bucket after the one `atUs` falls in, or null if that is the last bucket. */
  nextBucketStartUs(atUs: number): number | null {
    const bucket = this.bucketOf(atUs);
    return bucket >= this.lastBucket ? null : this.startUs + (bucket + 1) * this.bucketUs;
  }

  /** Closes every bucket that ended by `nowUs`, so a live report does not wait for a completion. */
  advance(nowUs: number): void {
    this.advanceTo(this.bucketOf(nowUs));
  }

  recordOp(atUs: number, latencyUs: number): void {
    this.advanceTo(this.bucketOf(atUs));
    recordLatencyUs(this.histogram, latencyUs);
    this.bucketOps++;
  }

  recordError(atUs: number): void {
    this.advanceTo(this.bucketOf(atUs));
    this.bucketErrors++;
  }

  /** Closes the last bucket, whose length runs to `endUs`, and returns the points. */
  finish(endUs: number): TimelinePoint[] {
    this.advanceTo(this.bucketOf(endUs));
    const bucketStartUs = this.startUs + this.bucket * this.bucketUs;
    this.flush(Math.max(1, endUs - bucketStartUs));
    return this.points;
  }

  private bucketOf(atUs: number): number {
    return Math.min(
      this.lastBucket,
      Math.max(0, Math.floor((atUs - this.startUs) / this.bucketUs)),
    );
  }

  private advanceTo(bucket: number): void {
    while (this.bucket < bucket) {
      this.flush(this.bucketUs);
      this.bucket++;
    }
  }

  private flush(lengthUs: number): void {
    const empty = this.bucketOps === 0;
    const point: TimelinePoint = {
      second: (this.bucket * this.bucketUs) / secondUs,
      opsPerSec: Math.round((this.bucketOps * secondUs) / lengthUs),
      p50Us: empty ? 0 : this.histogram.getValueAtPercentile(50),
      p99Us: empty ? 0 : this.histogram.getValueAtPercentile(99),
      errors: this.bucketErrors,
    };
    this.points.push(point);
    this.onPoint?.(point);
    this.histogram.reset();
    this.bucketOps = 0;
    this.bucketErrors = 0;
  }
}
