import { entryHeaderBytes } from '../config/limits.js';
import { assert } from '../util/assert.js';
import { crc32c } from '../util/crc32c.js';

/**
 * Log entry format. Entries are packed back to back inside a log block, each 8-byte aligned:
 *
 *   0        4    5     6        8          12          16      20        24        28        32
 *   +--------+----+-----+--------+----------+-----------+-------+---------+---------+---------+-----------------+
 *   | crc32c | op |flags| keyLen | valueLen | block gen | epoch | seq hi  | seq lo  | (zero)  | key | value |pad|
 *   +--------+----+-----+--------+----------+-----------+-------+---------+---------+---------+-----------------+
 *
 * The CRC32C covers bytes [4, 32 + keyLen + valueLen): the rest of the header, the key and the value.
 * The version of an entry is (epoch, seq): a newer epoch wins, then a higher sequence. `block gen` is
 * the generation of the block when the entry was written; a shortcut remembers it, so a shortcut into
 * a block that was freed and reused fails validation.
 *
 * An entry with the `linked` flag (clover mode, docs/baselines.md) is followed by an 8-byte link word
 * outside the CRC: the region offset of the key's next version, 0 until a writer links one with a
 * compare-and-swap. `entrySpan` is the bytes an entry takes in its block, link included.
 */
export const EntryOp = { put: 1, delete: 2 } as const;

export const EntryFlag = { linked: 1 } as const;

/** Bytes of the link word that follows a linked entry's body. */
export const entryLinkBytes = 8;
export type EntryOpCode = (typeof EntryOp)[keyof typeof EntryOp];

export const Entry = {
  crc: 0,
  op: 4,
  flags: 5,
  keyLen: 6,
  valueLen: 8,
  generation: 12,
  epoch: 16,
  seqHi: 20,
  seqLo: 24,
  reserved: 28,
  key: 32,
} as const;

export function entryBytes(keyLen: number, valueLen: number): number {
  return (entryHeaderBytes + keyLen + valueLen + 7) & ~7;
}

/** The bytes an entry with these fields takes in a block: its body, plus the link when linked. */
export function entrySpan(keyLen: number, valueLen: number, flags: number): number {
  return entryBytes(keyLen, valueLen) + ((flags & EntryFlag.linked) !== 0 ? entryLinkBytes : 0);
}

/** The span of the entry whose header is at `view[at]` (its fields are not checked here). */
export function entrySpanAt(view: DataView, at: number): number {
  return entrySpan(
    view.getUint16(at + Entry.keyLen, true),
    view.getUint32(at + Entry.valueLen, true),
    view.getUint8(at + Entry.flags),
  );
}

/** True when the entry at `view[at]` carries a link word (see EntryFlag.linked). */
export function entryIsLinked(view: DataView, at: number): boolean {
  return (view.getUint8(at + Entry.flags) & EntryFlag.linked) !== 0;
}

/** The offset of the link word of the linked entry at `at` (relative to the same buffer). */
export function entryLinkAt(view: DataView, at: number): number {
  return (
    at +
    entryBytes(view.getUint16(at + Entry.keyLen, true), view.getUint32(at + Entry.valueLen, true))
  );
}
export interface EntryHeader {
  op: number;
  keyLen: number;
  valueLen: number;
  generation: number;
  epoch: number;
  seq: number;
}

/**
 * Writes one entry at `buf[at]` and returns its span. `buf` must have room for it; the padding bytes
 * are zeroed so that checksums and scans see deterministic bytes, and a linked entry's link is 0.
 */
export function writeEntry(
  buf: Uint8Array,
  view: DataView,
  at: number,
  op: EntryOpCode,
  key: Uint8Array,
  value: Uint8Array | null,
  generation: number,
  epoch: number,
  seq: number,
  flags = 0,
): number {
  const valueLen = value === null ? 0 : value.length;
  const size = entrySpan(key.length, valueLen, flags);
  assert((at & 7) === 0, 'entries are 8-byte aligned');
  assert(at + size <= buf.length, 'entry fits the buffer');
  view.setUint8(at + Entry.op, op);
  view.setUint8(at + Entry.flags, flags);
  view.setUint16(at + Entry.keyLen, key.length, true);
  view.setUint32(at + Entry.valueLen, valueLen, true);
  view.setUint32(at + Entry.generation, generation, true);
  view.setUint32(at + Entry.epoch, epoch, true);
  view.setUint32(at + Entry.seqHi, Math.floor(seq / 0x1_0000_0000), true);
  view.setUint32(at + Entry.seqLo, seq >>> 0, true);
  view.setUint32(at + Entry.reserved, 0, true);
  buf.set(key, at + Entry.key);
  if (value !== null) buf.set(value, at + Entry.key + key.length);
  const end = at + Entry.key + key.length + valueLen;
  buf.fill(0, end, at + size);
  view.setUint32(at + Entry.crc, crc32c(buf, at + 4, end), true);
  return size;
}

export function readEntryHeader(view: DataView, at: number, out: EntryHeader): EntryHeader {
  out.op = view.getUint8(at + Entry.op);
  out.keyLen = view.getUint16(at + Entry.keyLen, true);
  out.valueLen = view.getUint32(at + Entry.valueLen, true);
  out.generation = view.getUint32(at + Entry.generation, true);
  out.epoch = view.getUint32(at + Entry.epoch, true);
  out.seq =
    view.getUint32(at + Entry.seqHi, true) * 0x1_0000_0000 + view.getUint32(at + Entry.seqLo, true);
  return out;
}

export function newEntryHeader(): EntryHeader {
  return { op: 0, keyLen: 0, valueLen: 0, generation: 0, epoch: 0, seq: 0 };
}

/**
 * True when the entry at `buf[at]` is well formed within `limit` bytes and its checksum matches.
 * Used by the merge (before applying), recovery (to cut torn tails) and readers (after a one-sided read).
 */
export function entryIsValid(buf: Uint8Array, view: DataView, at: number, limit: number): boolean {
  if (!entryIsWellFormed(view, at, limit)) return false;
  const keyLen = view.getUint16(at + Entry.keyLen, true);
  const valueLen = view.getUint32(at + Entry.valueLen, true);
  const end = at + Entry.key + keyLen + valueLen;
  return crc32c(buf, at + 4, end) === view.getUint32(at + Entry.crc, true);
}

/**
 * The structural half of entryIsValid (a known op, a key, and a size within `limit`), without the
 * checksum. Only the acceptTornEntries mutant relies on it alone.
 */
export function entryIsWellFormed(view: DataView, at: number, limit: number): boolean {
  if (at + entryHeaderBytes > limit) return false;
  const op = view.getUint8(at + Entry.op);
  if (op !== EntryOp.put && op !== EntryOp.delete) return false;
  const flags = view.getUint8(at + Entry.flags);
  if ((flags & ~EntryFlag.linked) !== 0) return false;
  const keyLen = view.getUint16(at + Entry.keyLen, true);
  const valueLen = view.getUint32(at + Entry.valueLen, true);
  return keyLen !== 0 && at + entrySpan(keyLen, valueLen, flags) <= limit;
}

/** Compares versions (epochA, seqA) and (epochB, seqB): negative, zero or positive. */
export function compareVersions(
  epochA: number,
  seqA: number,
  epochB: number,
  seqB: number,
): number {
  return epochA !== epochB ? epochA - epochB : seqA - seqB;
}

/** True when the key stored in the entry at `buf[at]` equals `key`. */
export function entryKeyEquals(
  buf: Uint8Array,
  view: DataView,
  at: number,
  key: Uint8Array,
): boolean {
  if (view.getUint16(at + Entry.keyLen, true) !== key.length) return false;
  const start = at + Entry.key;
  for (let i = 0; i < key.length; i++) if (buf[start + i] !== key[i]) return false;
  return true;
}
