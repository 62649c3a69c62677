import { assert } from '../util/assert.js';
import { allocatorControlWords, blockHeaderBytes } from './dac-allocator.js';

/**
 * The DAC arena: one SharedArrayBuffer per KN thread holding every byte of the cache, so that a
 * million entries cost no GC work and the monitor can read the counters without a message.
 *
 *   0        256            4352                  +8 x tableSlots     +4 x entriesMax
 *   +--------+--------------+---------------------+-------------------+-------------------------------+
 *   |counters| control words| hash table:         | LFU heap:         | heap (2 x capacity + 4 KiB):  |
 *   |32 x f64| LRU ends, LFU| tableSlots x        | entriesMax x u32  | node records with their keys, |
 *   |        | size, TLSF   | (u32 hash, u32 node)| node offsets      | value bytes (dac-allocator.ts)|
 *   +--------+--------------+---------------------+-------------------+-------------------------------+
 *
 * A node is named by the heap offset of its record (never 0). The record is 52 bytes of fields
 * followed by the key bytes, in one allocator block:
 *
 *   word 0-1  f64 stamp: when the node last changed place in the LFU order (tie-break, older first)
 *   word 2    hash of the key
 *   word 3    key length (bits 0-15) | kind (bits 16-17: 1 shortcut, 2 value)
 *   word 4    heap offset of the value block (values only, else 0)
 *   word 5    value length in bytes (values only, else 0)
 *   word 6    frequency: hits (the original's weight for values, its LFU count for shortcuts)
 *   word 7    values: LRU link toward the most recent; shortcuts: index in the LFU heap
 *   word 8    values: LRU link toward the least recent
 *   word 9-10 shortcut entryOffset, low and high 32 bits
 *   word 11   shortcut entryBytes
 *   word 12   shortcut generation
 */
export const NodeField = {
  stamp: 0,
  hash: 2,
  meta: 3,
  valuePtr: 4,
  valueLength: 5,
  frequency: 6,
  prev: 7,
  heapIndex: 7,
  next: 8,
  entryOffsetLow: 9,
  entryOffsetHigh: 10,
  entryBytes: 11,
  generation: 12,
} as const;
export const nodeFieldBytes = 52;
export const NodeKind = { shortcut: 1, value: 2 } as const;
export const metaKindShift = 16;
export const metaKeyLengthMask = 0xffff;

/** Two hash-table slots of 8 bytes per node: the table is sized for a load factor of at most 1/2. */
export const hashSlotBytesPerEntry = 16;
/**
 * What every entry (value or shortcut) is charged besides its key bytes: 8 (allocator block header)
 * + 52 (node record) + 16 (its two hash-table slots) = 76 bytes, the real metadata per node. The
 * rounding of blocks to 8 bytes (and to the 16-byte minimum) is not charged separately; it never
 * exceeds the hash-table share, which lives outside the heap (see dacLayout).
 */
export const dacEntryOverheadBytes = blockHeaderBytes + nodeFieldBytes + hashSlotBytesPerEntry;
/** What a value costs besides its bytes: the header of the separate block that holds them. */
export const dacValueOverheadBytes = blockHeaderBytes;

/** Bytes an entry is charged as a shortcut. */
export function shortcutChargeBytes(keyBytes: number): number {
  return dacEntryOverheadBytes + keyBytes;
}

/** Bytes an entry is charged as a value. */
export function valueChargeBytes(keyBytes: number, valueBytes: number): number {
  return dacEntryOverheadBytes + keyBytes + dacValueOverheadBytes + valueBytes;
}

/**
 * Counter slots (f64) at the start of the arena. The monitor may read them from another thread with
 * `readDacStats`; a read is a snapshot of independent numbers, not an atomic whole.
 */
export const DacCounter = {
  layoutVersion: 0,
  capacityBytes: 1,
  bytesUsed: 2,
  values: 3,
  shortcuts: 4,
  valueBytes: 5,
  promotions: 6,
  demotions: 7,
  evictions: 8,
  missCost: 9,
  lookups: 10,
  valueHits: 11,
  shortcutHits: 12,
  accessesSinceDecay: 13,
  decays: 14,
  stampClock: 15,
  fragmentationEvictions: 16,
  heapBytes: 17,
  heapBytesUsed: 18,
} as const;
export const dacLayoutVersion = 1;
const counterSlots = 32;

/** Control words (u32) after the counters. */
export const Control = {
  lruHead: 0,
  lruTail: 1,
  lfuSize: 2,
  allocator: 8,
} as const;
const controlWords = 1024;

/** Fixed slack on top of 2 x capacity, so the largest entry always has a contiguous block once the heap empties. */
const heapSlackBytes = 4096;

export interface DacLayout {
  entriesMax: number;
  tableSlots: number;
  countersOffset: number;
  controlOffset: number;
  tableOffset: number;
  lfuOffset: number;
  heapOffset: number;
  heapBytes: number;
  totalBytes: number;
}

/**
 * Where everything lives. The arena is at most 2 x capacityBytes + 20 x entriesMax + 9 KiB: the
 * fixed tables (20 bytes per node) plus a heap of twice the budget. The blocks of an entry never
 * take more heap than its charge (node block <= 67 + key bytes, value block <= 16 + value bytes,
 * against charges of 76 + key and 8 + value), so live blocks fill at most half the heap and the
 * other half absorbs fragmentation.
 */
export function dacLayout(capacityBytes: number, entriesMax: number): DacLayout {
  const align8 = (n: number): number => Math.ceil(n / 8) * 8;
  const tableSlots = 2 * entriesMax + 1;
  const countersOffset = 0;
  const controlOffset = countersOffset + counterSlots * 8;
  const tableOffset = controlOffset + controlWords * 4;
  const lfuOffset = tableOffset + tableSlots * 8;
  const heapOffset = align8(lfuOffset + entriesMax * 4);
  const heapBytes = align8(2 * capacityBytes + heapSlackBytes);
  return {
    entriesMax,
    tableSlots,
    countersOffset,
    controlOffset,
    tableOffset,
    lfuOffset,
    heapOffset,
    heapBytes,
    totalBytes: align8(heapOffset + heapBytes),
  };
}

assert(
  Control.allocator + allocatorControlWords <= controlWords,
  'DAC control area too small for the allocator',
);
