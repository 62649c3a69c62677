import calculateSlot from 'cluster-key-slot';
import { slotCount } from '../config/limits.js';

/**
 * The slot of a key: CRC16 (XMODEM) of the key, or of its `{hash tag}` when it has a non-empty one,
 * mod 16384 — exactly Redis Cluster's rule, so Redis Cluster clients route the same way we do.
 * cluster-key-slot is the implementation ioredis and node-redis use.
 */
export function slotOfKey(key: Uint8Array): number {
  const buffer = Buffer.isBuffer(key) ? key : Buffer.from(key.buffer, key.byteOffset, key.length);
  return calculateSlot(buffer);
}

/**
 * The initial slot map for `rankCount` KN thread ranks: contiguous, even ranges (rank r owns
 * [r * 16384 / R, (r + 1) * 16384 / R)), like a fresh Redis Cluster.
 */
export function evenSlotMap(rankCount: number): Uint16Array {
  const map = new Uint16Array(slotCount);
  for (let slot = 0; slot < slotCount; slot++)
    map[slot] = Math.floor((slot * rankCount) / slotCount);
  return map;
}
