/**
 * Client feedback for the M-node (dinomo-original.md section 6.1): the latency of every completed
 * request, in power-of-two microsecond buckets, so the M-node can merge clients into one true tail
 * latency instead of averaging per-client percentiles (the original's bug 24). One recorder may be
 * shared by many clients of one process; `take` returns and clears a period's counts.
 */
export class LatencyFeedback {
  /** counts[i]: requests that took less than 2^i µs (and at least 2^(i-1)). */
  private readonly counts = new Float64Array(40);
  private total = 0;

  record(latencyUs: number): void {
    const i = latencyUs < 1 ? 0 : Math.min(39, Math.ceil(Math.log2(latencyUs + 1)));
    this.counts[i] = (this.counts[i] as number) + 1;
    this.total++;
  }

  /** The period's buckets as (upper bound µs, count), then starts a new period. */
  take(): { ops: number; buckets: Array<{ latencyUs: number; count: number }> } {
    const buckets: Array<{ latencyUs: number; count: number }> = [];
    this.counts.forEach((count, i) => {
      if (count > 0) buckets.push({ latencyUs: 2 ** i, count });
    });
    const ops = this.total;
    this.counts.fill(0);
    this.total = 0;
    return { ops, buckets };
  }
}
