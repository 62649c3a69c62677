/**
 * The DPM: region layout and formatting, the log entry format, the one-sided index (KN-side reader,
 * DPM-side writer), merge, block allocation, log cleaning and the manager (core logic, service, worker entry).
 */
import { workerScript } from '../util/worker-script.js';

export { openFileRegion, type FileRegion } from './file-region.js';
export { unmergedChains } from './recovery.js';

export * from './layout.js';
export * from './log-entry.js';
export {
  formatRegion,
  openRegion,
  chainRecordOffset,
  blockOffset,
  blockIndexOf,
  fenceWordOffset,
  slotMapOffset,
  getU64,
  setU64,
  loadU64,
  storeU64,
  loadU32,
  storeU32,
  chainCountMax,
  regionBytesMax,
  type Region,
  type RegionGeometry,
  type FormatOptions,
} from './region.js';
export { IndexReader, lookupRetriesMax } from './index-reader.js';
export { IndexWriter, type ApplyOutcome, type IndexStats } from './index-writer.js';
export { indexBytesMin, sizeHintBytes, sizeHintClass, fingerprintOf } from './index-format.js';
export { mergeChain, mergeChainThrough, type MergeResult } from './merge.js';
export {
  BlockAllocator,
  blockSeqLimit,
  type AllocatorOptions,
  type SpaceStats,
} from './block-allocator.js';
export {
  cleanBlocks,
  type CleanHooks,
  type CleanRequest,
  type CleanResult,
  type CleanVictim,
  type VictimOutcome,
  type VictimState,
} from './cleaner.js';
export { checkLiveCounts, type LiveCountMismatch } from './cleaner-check.js';
export { CleanerPlanner, type CleanerOptions, type CleanerStats } from './cleaner-planner.js';
export {
  DpmManagerCore,
  type AllocResult,
  type ManagerCoreOptions,
  type ManagerStats,
  type MergeStats,
  type WaiterReport,
} from './dpm-manager-core.js';
export {
  DpmManagerService,
  type ReplyToken,
  type ManagerServiceOptions,
} from './dpm-manager-service.js';
export type {
  KnToDpmMessage,
  DpmToKnMessage,
  ParentToDpmMessage,
  DpmToParentMessage,
  DpmManagerWorkerData,
} from './dpm-protocol.js';

/** The compiled manager worker entry, for `new Worker(dpmManagerWorkerUrl(), { workerData })`. */
export function dpmManagerWorkerUrl(): URL {
  return workerScript(import.meta.url, './dpm-manager-worker.js');
}
