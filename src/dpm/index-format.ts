import { IndexBucket, IndexHeader, IndexSlot } from './layout.js';

/**
 * Encoding helpers shared by the DPM-side index writer and the KN-side one-sided reader: the table
 * descriptor, slots (fingerprint, size hint, entry offset) and the initial layout of the index area.
 * Nothing here touches a lock or a fabric; it is pure arithmetic on words and views.
 */

/** The smallest index area: the header plus two halves that each hold the minimum table. */
export const indexBytesMin = 8192;
export const tableBucketsMin = 16;
/** The initial table is at most this big; it grows by doubling as keys arrive. */
export const initialBucketsMax = 1024;
/** The descriptor keeps the version in 26 bits; a table doubles each version, so this never binds. */
export const tableVersionMax = 2 ** 26 - 1;
/** Region offsets of entries are stored divided by 8 in 40 bits. */
export const entryOffsetLimit = 2 ** (IndexSlot.offsetBits + 3);

export interface TableDescriptor {
  version: number;
  bucketsOffset: number;
  bucketCount: number;
}

/** Packs a table's geometry into the single 8-byte descriptor word that readers load atomically. */
export function packDescriptor(d: TableDescriptor): bigint {
  const log2Count = 31 - Math.clz32(d.bucketCount);
  const lo = d.bucketsOffset / IndexBucket.bytes;
  const hi = ((d.version << 6) | log2Count) >>> 0;
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

export function unpackDescriptor(word: bigint, out: TableDescriptor): TableDescriptor {
  const unsigned = BigInt.asUintN(64, word);
  const lo = Number(unsigned & 0xffff_ffffn);
  const hi = Number(unsigned >> 32n);
  out.version = hi >>> 6;
  out.bucketCount = 2 ** (hi & 63);
  out.bucketsOffset = lo * IndexBucket.bytes;
  return out;
}

export function newTableDescriptor(): TableDescriptor {
  return { version: 0, bucketsOffset: 0, bucketCount: 0 };
}

/**
 * The 16-bit fingerprint of a key hash, never 0 (0 marks an empty slot). The bucket index uses the
 * low bits of the hash, so the fingerprint comes from a multiplicative remix whose high bits depend on
 * every bit of the hash: keys that share a bucket still get well-spread fingerprints.
 */
export function fingerprintOf(hash: number): number {
  const fp = Math.imul(hash, 0x9e37_79b1) >>> 16;
  return fp === 0 ? 1 : fp;
}

/**
 * Size hint classes: class c stands for (4 + (c & 3)) * 2^(c >> 2) bytes, so consecutive classes are
 * at most 25% apart. A reader that reads `sizeHintBytes(c)` bytes gets the whole entry in one RT and
 * reads at most 25% more than it needs.
 */
export function sizeHintBytes(sizeClass: number): number {
  return (4 + (sizeClass & 3)) * 2 ** (sizeClass >>> 2);
}

/** The smallest size class whose decoded size is at least `bytes`. */
export function sizeHintClass(bytes: number): number {
  if (bytes <= 4) return 0;
  let exp = Math.max(0, 31 - Math.clz32(bytes) - 2);
  let mantissa = Math.ceil(bytes / 2 ** exp) - 4;
  if (mantissa > 3) {
    exp++;
    mantissa = Math.ceil(bytes / 2 ** exp) - 4;
  }
  return exp * 4 + Math.max(0, mantissa);
}

/** High u32 of a slot: fingerprint, size class and bits 32..39 of offset / 8. */
export function slotHighWord(fingerprint: number, sizeClass: number, entryOffset: number): number {
  const units = entryOffset / 8;
  return ((fingerprint << 16) | (sizeClass << 8) | Math.floor(units / 0x1_0000_0000)) >>> 0;
}

export function encodeSlot(fingerprint: number, sizeClass: number, entryOffset: number): bigint {
  const hi = slotHighWord(fingerprint, sizeClass, entryOffset);
  const lo = (entryOffset / 8) >>> 0;
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

export function slotFingerprint(hi: number): number {
  return hi >>> 16;
}

export function slotSizeClass(hi: number): number {
  return (hi >>> 8) & 0xff;
}

export function slotEntryOffset(hi: number, lo: number): number {
  return ((hi & 0xff) * 0x1_0000_0000 + lo) * 8;
}

/** The initial table size for an index area whose halves are `halfBytes` each. */
export function initialBucketCount(halfBytes: number): number {
  const fit = Math.floor(halfBytes / IndexBucket.bytes / 8);
  let count = tableBucketsMin;
  while (count * 2 <= fit && count * 2 <= initialBucketsMax) count *= 2;
  return count;
}

/**
 * Lays out an empty index in a zeroed index area: the header, and the version-1 table at the start of
 * half 0. The area is split into two halves; each table generation lives in one half with its
 * overflow buckets, and growth builds the next table in the other half (see index-writer.ts).
 */
export function initIndexArea(
  bytes: Uint8Array,
  view: DataView,
  indexOffset: number,
  indexBytes: number,
): void {
  bytes.fill(0, indexOffset, indexOffset + indexBytes);
  const dataOffset = indexOffset + IndexHeader.bytes;
  const halfBytes = Math.floor((indexBytes - IndexHeader.bytes) / 2 / IndexBucket.bytes) * 64;
  const bucketCount = initialBucketCount(halfBytes);
  for (let i = 0; i < bucketCount; i++) {
    view.setUint32(dataOffset + i * IndexBucket.bytes + IndexBucket.version, 1, true);
  }
  const at = indexOffset;
  const descriptor = packDescriptor({ version: 1, bucketsOffset: dataOffset, bucketCount });
  view.setBigInt64(at + IndexHeader.descriptor, descriptor, true);
  view.setUint32(at + IndexHeader.activeHalf, 0, true);
  setNumber64(view, at + IndexHeader.bumpOffset, dataOffset + bucketCount * IndexBucket.bytes);
  setNumber64(view, at + IndexHeader.halfBytes, halfBytes);
  setNumber64(view, at + IndexHeader.dataOffset, dataOffset);
}

function setNumber64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}
