import type { ReplyTo } from '../actors/index.js';
import type { FabricGrant } from '../fabric/grant.js';
import type { RegionGeometry } from './region.js';

/** The name of the DPM server's actor, in the system at `dpmSystemLocation`. */
export const dpmActorName = 'dpm';
export const dpmSystemLocation = { node: 'dpm', process: 0, thread: 0 } as const;

/** What a DPM server tells a process that connects: enough to read and write the region. */
export interface DpmDescription {
  geometry: RegionGeometry;
  provider: 'shm' | 'tcp';
  /** True when the region came from an earlier run (and was recovered), false when formatted now. */
  reopened: boolean;
}

/**
 * Requests to the DPM server over the TCP actor transport. They mirror the manager's port protocol
 * (dpm-protocol.ts), plus `grant` (a KN thread's fabric access) and `describe`. `alloc` and
 * `reopen` are refused (FENCED) for a fenced incarnation; `failover` fences at the fabric before
 * the manager fences and merges the chain.
 */
export type DpmServerMessage =
  | { type: 'describe'; replyTo: ReplyTo<DpmDescription> }
  | { type: 'grant'; rank: number; incarnation: number; replyTo: ReplyTo<FabricGrant> }
  | { type: 'alloc'; rank: number; incarnation: number; replyTo: ReplyTo<number> }
  | { type: 'reopen'; rank: number; incarnation: number; replyTo: ReplyTo<number> }
  | { type: 'wait-merged'; rank: number; lsn: number; replyTo: ReplyTo<number> }
  | { type: 'failover'; rank: number; incarnation: number; replyTo: ReplyTo<number> };
