import { Metadata } from './layout.js';

/**
 * The M-node's records in the DPM's cluster metadata (layout.ts, `Metadata`): the slot map and its
 * epoch. The M-node persists a move here before anyone acts on the new epoch.
 */

/** Records `owner` for `slots` and the map's new `epoch`. */
export function writeSlotOwners(
  view: DataView,
  metadataOffset: number,
  slots: Iterable<number>,
  owner: number,
  epoch: number,
): void {
  const map = metadataOffset + Metadata.slotMap;
  for (const slot of slots) view.setUint16(map + slot * 2, owner, true);
  view.setUint32(metadataOffset + Metadata.epoch, epoch, true);
}

/** Records a whole slot map (slot -> owner) and its epoch. */
export function writeSlotMap(
  view: DataView,
  metadataOffset: number,
  slotMap: Uint16Array,
  epoch: number,
): void {
  const map = metadataOffset + Metadata.slotMap;
  slotMap.forEach((owner, slot) => view.setUint16(map + slot * 2, owner, true));
  view.setUint32(metadataOffset + Metadata.epoch, epoch, true);
}

/** The epoch of the persisted slot map. */
export function readMapEpoch(view: DataView, metadataOffset: number): number {
  return view.getUint32(metadataOffset + Metadata.epoch, true);
}
