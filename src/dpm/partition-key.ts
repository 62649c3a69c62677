import { keyBytesMax, keyPrefixBytesMax } from '../config/limits.js';
import { slotOfKey } from '../routing/slot.js';

/**
 * DINOMO-N mode's private index partitions (docs/baselines.md). Every key a thread stores is
 * prefixed with its partition tag, the thread's rank as a big-endian u16, so one shared hash table
 * holds disjoint per-thread namespaces: a thread finds only the keys it wrote itself, and a key
 * moves to another thread only by being copied into that thread's partition.
 *
 * ```
 *   +----------+----------------------+
 *   | tag: u16 | the client's key     |
 *   | (rank)   | (1..keyBytesMax)     |
 *   +----------+----------------------+
 * ```
 */
export const partitionTagBytes = keyPrefixBytesMax;

/** The longest key a DINOMO-N thread stores. */
export const partitionedKeyBytesMax = keyBytesMax + partitionTagBytes;

/** Writes `tag` and `key` into `out` (which holds partitionedKeyBytesMax bytes); returns the view. */
export function tagKey(tag: number, key: Uint8Array, out: Uint8Array): Uint8Array {
  out[0] = tag >>> 8;
  out[1] = tag & 0xff;
  out.set(key, partitionTagBytes);
  return out.subarray(0, partitionTagBytes + key.length);
}

/** The partition tag of a stored key, or -1 when it is too short to carry one. */
export function partitionTagOf(stored: Uint8Array): number {
  if (stored.length <= partitionTagBytes) return -1;
  return ((stored[0] as number) << 8) | (stored[1] as number);
}

/** The client's key inside a stored key (a view, no copy). */
export function untaggedKey(stored: Uint8Array): Uint8Array {
  return stored.subarray(partitionTagBytes);
}

/** The slot of the client's key inside a stored key. */
export function slotOfTaggedKey(stored: Uint8Array): number {
  return slotOfKey(stored.subarray(partitionTagBytes));
}
