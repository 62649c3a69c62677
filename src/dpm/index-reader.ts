import { DinomoError } from '../errors/index.js';
import type { Fabric } from '../fabric/index.js';
import {
  fingerprintOf,
  newTableDescriptor,
  sizeHintBytes,
  slotEntryOffset,
  slotFingerprint,
  slotSizeClass,
  unpackDescriptor,
} from './index-format.js';
import { EntryFetcher } from './entry-fetcher.js';
import { IndexBucket, IndexHeader } from './layout.js';
import {
  Entry,
  EntryOp,
  entryBytes,
  entryIsLinked,
  entryIsValid,
  entryKeyEquals,
  entrySpanAt,
} from './log-entry.js';
import type { RegionGeometry } from './region.js';

/** Lookups that met a torn or inconsistent read are retried this many times before CORRUPT. */
export const lookupRetriesMax = 8;
/** A table replaced more often than this during one lookup attempt counts as inconsistent. */
const refreshesPerAttemptMax = 4;

/**
 * The KN-side index lookup, with one-sided reads only. The common hit costs 2 RTs: the bucket, then
 * the entry (its size hint says how many bytes to read). The table geometry is cached; reading it
 * costs 1 RT the first time and again whenever a bucket's version word shows that the table was
 * replaced. Each overflow bucket costs 1 RT more.
 *
 * Readers never lock, so a read can race with the DPM-side writer: a slot may be replaced between the
 * bucket read and the entry read, or a read may be torn. Everything read is therefore validated (the
 * entry's CRC, bounds, key and op); a lookup that met something inconsistent and found nothing is
 * retried, a bounded number of times, and then reported as CORRUPT.
 *
 * After `lookup` returns true the entry fields and `value` describe the newest indexed entry; `value`
 * is a view of a scratch buffer that the next lookup overwrites. In clover mode the indexed entry is
 * a linked version (docs/baselines.md), which may be a tombstone: `linked`, `op` and `link` say so,
 * and the caller follows `link` to the newest version.
 */
export class IndexReader {
  entryOffset = 0;
  entryBytes = 0;
  generation = 0;
  epoch = 0;
  seq = 0;
  /** EntryOp of the found entry: always put, except a clover-mode tombstone. */
  op: number = EntryOp.put;
  /** Whether the found entry is a linked (clover-mode) version, and its link word as read. */
  linked = false;
  link = 0;
  value: Uint8Array = new Uint8Array(0);
  /** RTs the last lookup took (the KN's miss cost). */
  lastLookupRts = 0;
  /** Times the cached table geometry was found stale and re-read. */
  geometryRefreshes = 0;

  private readonly fabric: Fabric;
  private readonly geometry: RegionGeometry;
  private readonly table = newTableDescriptor();
  private readonly bucket = new Uint8Array(IndexBucket.bytes);
  private readonly bucketView = new DataView(this.bucket.buffer);
  private readonly entries: EntryFetcher;
  private inconsistent = false;

  constructor(fabric: Fabric, geometry: RegionGeometry) {
    this.fabric = fabric;
    this.geometry = geometry;
    this.entries = new EntryFetcher(fabric, geometry);
  }

  /** The cached table version (0 before the first lookup). */
  get cachedVersion(): number {
    return this.table.version;
  }

  /** Forgets the cached geometry, so the next lookup re-reads it. */
  invalidateGeometry(): void {
    this.table.version = 0;
  }

  /** Finds the newest indexed entry for `key` (`hash` = hashKey(key)). False when it is not indexed. */
  lookup(key: Uint8Array, hash: number): boolean {
    const rtsBefore = this.fabric.counters.rts;
    try {
      for (let attempt = 0; attempt <= lookupRetriesMax; attempt++) {
        this.inconsistent = false;
        if (this.lookupOnce(key, hash)) return true;
        if (!this.inconsistent) return false;
        this.invalidateGeometry();
      }
      throw new DinomoError(
        'CORRUPT',
        `index lookup for a ${key.length}-byte key met inconsistent data ${lookupRetriesMax + 1} times`,
      );
    } finally {
      this.lastLookupRts = this.fabric.counters.rts - rtsBefore;
    }
  }

  private lookupOnce(key: Uint8Array, hash: number): boolean {
    const fp = fingerprintOf(hash);
    if (this.table.version === 0) this.readDescriptor();
    let bucket =
      this.table.bucketsOffset + (hash & (this.table.bucketCount - 1)) * IndexBucket.bytes;
    let refreshes = 0;
    for (let hops = 0; bucket !== 0; hops++) {
      if (hops > this.hopsMax() || refreshes > refreshesPerAttemptMax || !this.readBucket(bucket)) {
        this.inconsistent = true;
        return false;
      }
      const view = this.bucketView;
      if (view.getUint32(IndexBucket.version, true) !== this.table.version) {
        // The table was replaced (or this overflow read raced with retirement): start over with
        // fresh geometry. Not an inconsistency, just a stale cache.
        this.geometryRefreshes++;
        refreshes++;
        this.readDescriptor();
        bucket =
          this.table.bucketsOffset + (hash & (this.table.bucketCount - 1)) * IndexBucket.bytes;
        continue;
      }
      for (let s = 0; s < IndexBucket.slotCount; s++) {
        const at = IndexBucket.firstSlot + s * 8;
        const lo = view.getUint32(at, true);
        const hi = view.getUint32(at + 4, true);
        if ((hi === 0 && lo === 0) || slotFingerprint(hi) !== fp) continue;
        if (this.readEntry(slotEntryOffset(hi, lo), sizeHintBytes(slotSizeClass(hi)), key))
          return true;
        if (!this.inconsistent && this.slotChanged(bucket + at, hi, lo)) {
          this.inconsistent = true;
          return false;
        }
      }
      bucket =
        view.getUint32(IndexBucket.overflow, true) +
        view.getUint32(IndexBucket.overflow + 4, true) * 2 ** 32;
    }
    return false;
  }

  /**
   * After an entry with another key: was the slot replaced meanwhile? A slot that still holds the
   * same word still points into a block with a live entry, which therefore was not freed or reused,
   * so the mismatch is a true fingerprint collision. A changed slot means the entry read may have
   * come from a reused block: the lookup must start over, or it could report a false "not found".
   * Costs one RT, and only on a fingerprint match with the wrong key.
   */
  private slotChanged(slotOffset: number, hi: number, lo: number): boolean {
    const word = this.fabric.read64(slotOffset);
    // read64 gives the word as a signed 64-bit value: compare it as one.
    return word !== BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  }

  private readDescriptor(): void {
    const word = this.fabric.read64(this.geometry.indexOffset + IndexHeader.descriptor);
    unpackDescriptor(word, this.table);
    const g = this.geometry;
    const end = this.table.bucketsOffset + this.table.bucketCount * IndexBucket.bytes;
    if (
      this.table.version === 0 ||
      this.table.bucketsOffset < g.indexOffset ||
      end > g.indexOffset + g.indexBytes
    ) {
      throw new DinomoError('CORRUPT', 'the index table descriptor points outside the index area');
    }
  }

  /** Reads one bucket; false when its offset cannot be a bucket (a torn overflow pointer). */
  private readBucket(bucket: number): boolean {
    const g = this.geometry;
    const inArea =
      bucket >= g.indexOffset + IndexHeader.bytes &&
      bucket + IndexBucket.bytes <= g.indexOffset + g.indexBytes;
    if (!inArea || bucket % IndexBucket.bytes !== 0) return false;
    this.fabric.read(bucket, IndexBucket.bytes, this.bucket, 0);
    return true;
  }

  /**
   * Reads and validates the entry a fingerprint-matching slot points to. True when it is a put of
   * `key` (fields are set); false for another key with the same fingerprint, or for anything
   * inconsistent (which also flags the lookup for a retry).
   */
  private readEntry(entryOffset: number, hintBytes: number, key: Uint8Array): boolean {
    const length = this.entries.fetch(entryOffset, hintBytes);
    if (length === 0) {
      this.inconsistent = true;
      return false;
    }
    const { bytes, view } = this.entries;
    // Only clover mode indexes tombstones (as versions of a chain); elsewhere one means a torn read.
    const op = view.getUint8(Entry.op);
    if (!entryIsValid(bytes, view, 0, length) || (op !== EntryOp.put && !entryIsLinked(view, 0))) {
      this.inconsistent = true;
      return false;
    }
    if (!entryKeyEquals(bytes, view, 0, key)) return false;
    this.setResult(entryOffset, key.length);
    return true;
  }

  private setResult(entryOffset: number, keyLen: number): void {
    const { bytes, view } = this.entries;
    const valueLen = view.getUint32(Entry.valueLen, true);
    this.entryOffset = entryOffset;
    this.entryBytes = entrySpanAt(view, 0);
    this.op = view.getUint8(Entry.op);
    this.linked = entryIsLinked(view, 0);
    const linkAt = entryBytes(keyLen, valueLen);
    this.link = this.linked
      ? view.getUint32(linkAt, true) + view.getUint32(linkAt + 4, true) * 2 ** 32
      : 0;
    this.generation = view.getUint32(Entry.generation, true);
    this.epoch = view.getUint32(Entry.epoch, true);
    this.seq = view.getUint32(Entry.seqHi, true) * 2 ** 32 + view.getUint32(Entry.seqLo, true);
    const valueStart = Entry.key + keyLen;
    this.value = bytes.subarray(valueStart, valueStart + valueLen);
  }

  private hopsMax(): number {
    return this.geometry.indexBytes / IndexBucket.bytes;
  }
}
