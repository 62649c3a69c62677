import type { ReplyTo } from '../actors/index.js';

/**
 * The routing service (RN) of a multi-process cluster: the monitor's actor answers `routing` with
 * the slot map and where each serving KN thread takes client connections. A client caches the
 * table and asks again when a request is refused (MOVED, TRYAGAIN) or unanswered.
 */

/**
 * Where the monitor's actor system runs, in every process that talks to it; its actor is named
 * `monitorActorName` (src/kn), as in the embedded cluster.
 */
export const monitorSystemLocation = { node: 'monitor', process: 0, thread: 0 } as const;

/** The data port of one KN thread (kn-data-server.ts: length-prefixed request batches). */
export interface KnEndpoint {
  rank: number;
  knId: number;
  host: string;
  port: number;
}

export interface RoutingTable {
  /** The epoch of the slot map, as persisted in the DPM's cluster metadata. */
  epoch: number;
  /** Slot -> owning KN thread rank: 16384 unsigned 16-bit little-endian owners. */
  slotMap: Uint8Array;
  /** The KN threads that serve (or are being given) slots. */
  endpoints: KnEndpoint[];
}

export type RnMessage = { type: 'routing'; replyTo: ReplyTo<RoutingTable> };

/** The slot map of a routing table as owners, copied into `into` (16384 entries). */
export function decodeSlotMap(bytes: Uint8Array, into: Uint16Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let slot = 0; slot < into.length; slot++) into[slot] = view.getUint16(slot * 2, true);
}

/** Owners as the 16384 u16 little-endian bytes a routing table and the DPM's metadata carry. */
export function encodeSlotMap(owners: Uint16Array): Uint8Array {
  const bytes = new Uint8Array(owners.length * 2);
  const view = new DataView(bytes.buffer);
  owners.forEach((owner, slot) => view.setUint16(slot * 2, owner, true));
  return bytes;
}
