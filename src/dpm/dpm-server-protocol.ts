import type { ReplyTo } from '../actors/index.js';
import type { FabricGrant } from '../fabric/grant.js';
import type { PartitionScanPage } from './dpm-manager-core.js';
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

/** Bytes of a slot map in `read-map` and `write-map`: 16384 owners as u16 little-endian. */
export const slotMapBytes = 16384 * 2;

/**
 * Requests to the DPM server over the TCP actor transport. They mirror the manager's port protocol
 * (dpm-protocol.ts), plus `grant` (a KN thread's fabric access) and `describe`. `alloc` and
 * `reopen` are refused (FENCED) for a fenced incarnation; `failover` fences at the fabric before
 * the manager fences and merges the chain. `incarnation`, `read-map`, `write-owners` and
 * `write-map` serve the M-node and KN processes: the fence words and the cluster metadata (slot map
 * and epoch, layout.ts `Metadata`). Invalid arguments are refused with INVALID_OPTION, changing
 * nothing.
 */
export type DpmServerMessage =
  | { type: 'describe'; replyTo: ReplyTo<DpmDescription> }
  | { type: 'grant'; rank: number; incarnation: number; replyTo: ReplyTo<FabricGrant> }
  | { type: 'alloc'; rank: number; incarnation: number; replyTo: ReplyTo<number> }
  | { type: 'reopen'; rank: number; incarnation: number; replyTo: ReplyTo<number> }
  | { type: 'wait-merged'; rank: number; lsn: number; replyTo: ReplyTo<number> }
  | {
      type: 'create-linked';
      rank: number;
      incarnation: number;
      entryOffset: number;
      replyTo: ReplyTo<number>;
    }
  | {
      type: 'scan-partitions';
      rank: number;
      incarnation: number;
      slots: number[];
      tableVersion: number;
      fromBucket: number;
      keysMax: number;
      replyTo: ReplyTo<PartitionScanPage>;
    }
  | { type: 'failover'; rank: number; incarnation: number; replyTo: ReplyTo<number> }
  /** The incarnation a process taking over `rank` must use: the lowest one its fence allows. */
  | { type: 'incarnation'; rank: number; replyTo: ReplyTo<number> }
  /** The persisted slot map (16384 owners as u16 little-endian bytes) and its epoch. */
  | { type: 'read-map'; replyTo: ReplyTo<{ epoch: number; slotMap: Uint8Array }> }
  /** Records `owner` for `slots` and the map's new `epoch` (durable before the answer). */
  | { type: 'write-owners'; slots: number[]; owner: number; epoch: number; replyTo: ReplyTo<null> }
  /** Records a whole slot map (16384 u16 LE owners) and its epoch (durable before the answer). */
  | { type: 'write-map'; slotMap: Uint8Array; epoch: number; replyTo: ReplyTo<null> };
