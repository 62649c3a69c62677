import { cleanBlocks, type CleanRequest, type CleanResult } from './cleaner.js';
import { mergeChain, type MergeResult } from './merge.js';
import { openRegion, type Region } from './region.js';
import { superblockFormatIdOffset } from './layout.js';

export interface MergeTaskInput {
  region: SharedArrayBuffer;
  rank: number;
  maxEntries: number;
}

/** Input of the `cleanTask` export (run with `pool.run(input, { name: 'cleanTask' })`). */
export interface CleanTaskInput extends CleanRequest {
  region: SharedArrayBuffer;
}

/**
 * The per-thread cache of the opened region. A SharedArrayBuffer arrives as a new object with every
 * task message, so the cache is keyed by the region's 64-bit format identity and size: the cached
 * views still describe the same shared memory.
 */
let cached: Region | null = null;

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
  return cached;
}

/** The piscina task: one merge pass over one chain. Returns plain data (see MergeResult). */
export default function mergeTask(input: MergeTaskInput): MergeResult {
  return mergeChain(regionFor(input.region), input.rank, input.maxEntries);
}

/**
 * The piscina task for cleaning: copies the live entries of merged blocks into a cleaner block and
 * frees them (cleaner.ts). It lives in this file so that it shares the pool and the region cache.
 */
export function cleanTask(input: CleanTaskInput): CleanResult {
  const { region, ...request } = input;
  return cleanBlocks(regionFor(region), request);
}
