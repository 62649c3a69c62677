import { cleanBlocks, type CleanRequest, type CleanResult } from './cleaner.js';
import { mergeChain, type MergeResult } from './merge.js';
import { fileRegionFlush, noFlush, type RegionFlush } from './region-flush.js';
import { openRegion, type Region } from './region.js';
import { superblockFormatIdOffset } from './layout.js';

/** What every task gets besides its own input: the region, and whether to flush it. */
export interface TaskRegion {
  region: SharedArrayBuffer;
  /** Set for durability 'sync': the task flushes the file-backed region (merge.ts, cleaner.ts). */
  flushCounter?: SharedArrayBuffer;
}

export interface MergeTaskInput extends TaskRegion {
  rank: number;
  maxEntries: number;
}

/** Input of the `cleanTask` export (run with `pool.run(input, { name: 'cleanTask' })`). */
export interface CleanTaskInput extends CleanRequest, TaskRegion {}

/**
 * The per-thread cache of the opened region. A SharedArrayBuffer arrives as a new object with every
 * task message, so the cache is keyed by the region's 64-bit format identity and size: the cached
 * views still describe the same shared memory.
 */
let cached: Region | null = null;
/** The flush barrier of the cached region, made once per thread (it loads the pmem addon). */
let cachedFlush: RegionFlush | null = null;

function regionFor(sab: SharedArrayBuffer): Region {
  if (cached !== null && cached.sab.byteLength === sab.byteLength) {
    const view = new DataView(sab, superblockFormatIdOffset, 8);
    if (
      view.getUint32(0, true) === cached.formatId[0] &&
      view.getUint32(4, true) === cached.formatId[1]
    ) {
      return cached;
    }
  }
  cached = openRegion(sab);
  cachedFlush = null;
  return cached;
}

/** No flush without a counter (durability 'async'); the cached region's barrier with one. */
function flushFor(region: Region, counter: SharedArrayBuffer | undefined): RegionFlush {
  if (counter === undefined) return noFlush;
  cachedFlush ??= fileRegionFlush(region.sab, counter);
  return cachedFlush;
}

/** The piscina task: one merge pass over one chain. Returns plain data (see MergeResult). */
export default function mergeTask(input: MergeTaskInput): MergeResult {
  const region = regionFor(input.region);
  return mergeChain(region, input.rank, input.maxEntries, {}, flushFor(region, input.flushCounter));
}

/**
 * The piscina task for cleaning: copies the live entries of merged blocks into a cleaner block and
 * frees them (cleaner.ts). It lives in this file so that it shares the pool and the region cache.
 */
export function cleanTask(input: CleanTaskInput): CleanResult {
  const { region: sab, flushCounter, ...request } = input;
  const region = regionFor(sab);
  return cleanBlocks(region, request, {}, flushFor(region, flushCounter));
}
