import type { FilledOptions } from '../config/index.js';
import type { KnThreadSettings } from '../kn/index.js';

/** How every KN thread of a cluster runs, from the cluster's options. */
export function knThreadSettings(o: FilledOptions): KnThreadSettings {
  return {
    mode: o.mode,
    cacheBytes: o.cacheBytesPerThread,
    blockBytes: o.blockBytes,
    recentBlocks: o.recentBlocks,
    groupCommitUs: o.groupCommitUs,
    groupCommitBytes: o.groupCommitBytes,
    inflightMax: o.inflightMaxPerThread,
    controlTimeoutMs: o.requestTimeoutMs,
    heartbeatMs: o.heartbeatMs,
    durability: o.durability,
  };
}
