import { describe, expect, it } from 'vitest';
import {
  buildReport,
  createLatencyHistogram,
  diffStats,
  formatReport,
  summarizeLatency,
  type BenchConfig,
  type BenchStats,
  type RunResult,
} from '../../../src/bench/index.js';

function stats(partial: {
  gets: number;
  puts: number;
  rts: number;
  value: number;
  shortcut: number;
  log: number;
  miss: number;
  missCostRts: number;
}): BenchStats {
  return {
    ops: { gets: partial.gets, puts: partial.puts, deletes: 0, total: partial.gets + partial.puts },
    rts: { total: partial.rts, perOp: 0 },
    hits: {
      value: partial.value,
      shortcut: partial.shortcut,
      log: partial.log,
      miss: partial.miss,
      notFound: 0,
    },
    missCostRts: partial.missCostRts,
    dpm: { bytesUsed: 5_000_000 },
    cache: { bytesUsed: 123_456 },
  };
}

const config: BenchConfig = {
  workload: 'read-mostly',
  readFraction: 0.95,
  keys: 1000,
  zipf: 0.99,
  scramble: false,
  valueBytes: 1000,
  concurrency: 64,
  durationSec: 2,
  seed: 7,
  kns: 1,
  threadsPerKn: 2,
  cacheBytesPerThread: null,
  regionBytes: 256 * 1024 * 1024,
};

function runResult(before: BenchStats, after: BenchStats): RunResult {
  const histogram = createLatencyHistogram();
  for (let i = 1; i <= 1000; i++) histogram.recordValue(i);
  return {
    elapsedUs: 2_000_000,
    ops: { gets: 950, puts: 50, total: 1000, getsNotFound: 0 },
    errors: { TIMEOUT: 2 },
    firstErrorMessage: 'TIMEOUT: test',
    abandoned: 1,
    latencyUs: summarizeLatency(histogram),
    histogram,
    timeline: [
      { second: 0, opsPerSec: 500, p50Us: 500, p99Us: 990, errors: 2 },
      { second: 1, opsPerSec: 500, p50Us: 500, p99Us: 990, errors: 0 },
    ],
    statsBefore: before,
    statsAfter: after,
  };
}

describe('diffStats', () => {
  it('subtracts counters and recovers the phase-only miss cost', () => {
    // Before: 100 misses at 4 RTs on average; the phase adds 100 misses at 2 RTs, so 3 overall.
    const before = stats({
      gets: 1000,
      puts: 1000,
      rts: 2000,
      value: 800,
      shortcut: 50,
      log: 50,
      miss: 100,
      missCostRts: 4,
    });
    const after = stats({
      gets: 2000,
      puts: 1100,
      rts: 2500,
      value: 1600,
      shortcut: 100,
      log: 100,
      miss: 200,
      missCostRts: 3,
    });
    const delta = diffStats(before, after);
    expect(delta).toMatchObject({ gets: 1000, total: 1100, rts: 500 });
    expect(delta.hits).toMatchObject({ value: 800, shortcut: 50, log: 50, miss: 100 });
    expect(delta.missCostRts).toBeCloseTo(2, 10);
  });
});

describe('buildReport', () => {
  const before = stats({
    gets: 1000,
    puts: 1000,
    rts: 2000,
    value: 800,
    shortcut: 50,
    log: 50,
    miss: 100,
    missCostRts: 4,
  });
  const after = stats({
    gets: 2000,
    puts: 1100,
    rts: 2500,
    value: 1600,
    shortcut: 100,
    log: 100,
    miss: 200,
    missCostRts: 3,
  });
  const report = buildReport(runResult(before, after), config, {
    keys: 1000,
    elapsedUs: 500_000,
    retries: 0,
  });

  it('computes throughput, latency and the ratios over the measured phase', () => {
    expect(report.opsPerSec).toBe(500);
    expect(report.durationSec).toBe(2);
    expect(report.latencyUs).toMatchObject({ p50: 500, p99: 990, p999: 999, max: 1000 });
    expect(report.rtsPerOp).toBeCloseTo(500 / 1100, 3);
    expect(report.hitRatio).toEqual({ value: 0.8, shortcut: 0.05, log: 0.05, miss: 0.1 });
    expect(report.missCostRts).toBe(2);
    expect(report.dpmBytesUsed).toBe(5_000_000);
    expect(report.cacheBytesUsed).toBe(123_456);
    expect(report.errors).toEqual({ TIMEOUT: 2, DRAIN_TIMEOUT: 1 });
    expect(report.load).toEqual({ keys: 1000, durationSec: 0.5, opsPerSec: 2000 });
    expect(report.config).toBe(config);
  });

  it('survives a JSON round trip and has no NaN when nothing was counted', () => {
    const empty = stats({
      gets: 0,
      puts: 0,
      rts: 0,
      value: 0,
      shortcut: 0,
      log: 0,
      miss: 0,
      missCostRts: 0,
    });
    const idle = buildReport(
      { ...runResult(empty, empty), ops: { gets: 0, puts: 0, total: 0, getsNotFound: 0 } },
      config,
    );
    const text = JSON.stringify(idle);
    expect(text).not.toMatch(/null,"shortcut"|NaN|Infinity/);
    expect(JSON.parse(text)).toMatchObject({
      rtsPerOp: 0,
      hitRatio: { value: 0, miss: 0 },
      missCostRts: 0,
      load: null,
    });
  });

  it('formats a readable table', () => {
    const text = formatReport(report);
    expect(text).toContain('throughput     500 ops/s over 2.0 s');
    expect(text).toContain('p99 990');
    expect(text).toContain('value 80.0%');
    expect(text).toContain('TIMEOUT 2, DRAIN_TIMEOUT 1');
    expect(text).toContain('region 256.0 MiB');
    expect(text).toMatch(/second\s+ops\/s\s+p50 µs\s+p99 µs\s+errors/);
    expect(text.endsWith('\n')).toBe(true);
  });
});
