/** What the parent passes to a KN worker thread. */
export interface KnWorkerData {
  region: SharedArrayBuffer;
  rank: number;
  knId: number;
  statsBuffer: SharedArrayBuffer;
  cacheBytes: number;
  blockBytes: number;
  recentBlocks: number;
  groupCommitUs: number;
  groupCommitBytes: number;
  inflightMax: number;
  controlTimeoutMs: number;
  /** How often the thread renews its ownership lease with the M-node. */
  heartbeatMs: number;
  /**
   * 'sync': the region is file-backed and every persist flushes what the thread wrote since the
   * last one to the file (msync) before the batch is acknowledged. 'async': persist only counts.
   */
  durability: 'async' | 'sync';
}
