import { createLatencyHistogram, recordLatencyUs, type Histogram } from './histogram.js';

const secondUs = 1_000_000;

/** One second of a run. The last second also holds the operations that finished while draining. */
export interface TimelinePoint {
  /** Seconds since the start of the measured phase (0 is the first second). */
  second: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  errors: number;
}

/**
 * Buckets completions by the second they finished in, so the timeline needs no timer and comes out
 * the same on a virtual clock. A second without completions still gets a point (with 0 ops/s), which
 * is what a stall should look like.
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
  ) {
    this.lastBucket = Math.max(0, Math.ceil(durationUs / secondUs) - 1);
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
    const bucketStartUs = this.startUs + this.bucket * secondUs;
    this.flush(Math.max(1, endUs - bucketStartUs));
    return this.points;
  }

  private bucketOf(atUs: number): number {
    return Math.min(this.lastBucket, Math.max(0, Math.floor((atUs - this.startUs) / secondUs)));
  }

  private advanceTo(bucket: number): void {
    while (this.bucket < bucket) {
      this.flush(secondUs);
      this.bucket++;
    }
  }

  private flush(lengthUs: number): void {
    const empty = this.bucketOps === 0;
    this.points.push({
      second: this.bucket,
      opsPerSec: Math.round((this.bucketOps * secondUs) / lengthUs),
      p50Us: empty ? 0 : this.histogram.getValueAtPercentile(50),
      p99Us: empty ? 0 : this.histogram.getValueAtPercentile(99),
      errors: this.bucketErrors,
    });
    this.histogram.reset();
    this.bucketOps = 0;
    this.bucketErrors = 0;
  }
}
