import { describe, expect, it } from 'vitest';
import { defaultOptions, fillOptions } from '../../../src/config/index.js';
import { DinomoError } from '../../../src/errors/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (err) {
    return err instanceof DinomoError ? err.code : 'other';
  }
}

describe('options', () => {
  it('fills defaults', () => {
    // 256 MiB of 8 MiB blocks hold 27 blocks: two per thread for 6 KNs of 2 threads, so kns + 4 fits.
    expect(fillOptions()).toEqual({ ...defaultOptions, maxKns: 5 });
    expect(fillOptions({ kns: 2 }).kns).toBe(2);
    // A small region gets fewer spare KNs, never fewer than kns.
    expect(fillOptions({ regionBytes: 32 * 2 ** 20, blockBytes: 2 * 2 ** 20 }).maxKns).toBe(3);
    expect(fillOptions({ kns: 4, regionBytes: 16 * 2 ** 20, blockBytes: 2 ** 21 }).maxKns).toBe(4);
    expect(codeOf(() => fillOptions({ kns: 3, maxKns: 2 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ heartbeatMs: 100, leaseMs: 150 }))).toBe('INVALID_OPTION');
  });

  it('refuses bad values with INVALID_OPTION naming the option', () => {
    expect(codeOf(() => fillOptions({ kns: 0 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ threadsPerKn: 1.5 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ blockBytes: 3 * 1024 * 1024 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ blockBytes: 1024 * 1024 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ cacheBytesPerThread: -1 }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ nope: 1 } as never))).toBe('INVALID_OPTION');
    expect(() => fillOptions({ kns: 0 })).toThrow(/options\.kns must be an integer from 1 to 64/);
    expect(codeOf(() => fillOptions({ dataDir: '' }))).toBe('INVALID_OPTION');
    expect(codeOf(() => fillOptions({ dataDir: 7 } as never))).toBe('INVALID_OPTION');
  });

  it('takes durability async or sync, and sync only with a dataDir', () => {
    expect(fillOptions().durability).toBe('async');
    expect(fillOptions({ durability: 'sync', dataDir: '/tmp/x' }).durability).toBe('sync');
    expect(fillOptions({ durability: 'async', dataDir: '/tmp/x' }).durability).toBe('async');
    expect(codeOf(() => fillOptions({ durability: 'fsync' } as never))).toBe('INVALID_OPTION');
    expect(() => fillOptions({ durability: 'fsync' } as never)).toThrow(
      /options\.durability must be 'async' or 'sync', got "fsync"/,
    );
    expect(codeOf(() => fillOptions({ durability: 'sync' }))).toBe('INVALID_OPTION');
    expect(() => fillOptions({ durability: 'sync' })).toThrow(
      "durability 'sync' needs dataDir: a region in plain memory has nothing to flush to",
    );
  });

  it('takes the three engine modes and refuses any other with INVALID_OPTION', () => {
    expect(fillOptions().mode).toBe('dinomo');
    for (const mode of ['dinomo', 'clover', 'dinomo-n'] as const) {
      expect(fillOptions({ mode }).mode).toBe(mode);
    }
    expect(codeOf(() => fillOptions({ mode: 'foo' } as never))).toBe('INVALID_OPTION');
    expect(() => fillOptions({ mode: 'foo' } as never)).toThrow(
      /options\.mode must be one of 'dinomo', 'clover', 'dinomo-n', got "foo"/,
    );
    expect(codeOf(() => fillOptions({ mode: 7 } as never))).toBe('INVALID_OPTION');
  });
});
