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
}
