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
  /** The lease the thread holds at start (clock time, µs) and how often it renews it. */
  leaseUntilUs: number;
  heartbeatMs: number;
}
