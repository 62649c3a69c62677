import { assert } from '../util/assert.js';
import { hashKey } from '../util/hash.js';
import {
  packDescriptor,
  slotEntryOffset,
  tableVersionMax,
  type TableDescriptor,
} from './index-format.js';
import { IndexBucket, IndexHeader } from './layout.js';
import { Entry } from './log-entry.js';
import { noFlush, type RegionFlush } from './region-flush.js';
import { getU64, setU64, type Region } from './region.js';

/**
 * Doubles the index table. Called by the index writer, which holds the writer lock. Safe for
 * concurrent one-sided readers, and linearizable for them, because:
 *  1. The writer lock is held from the copy's start until the old table is retired, so no writer
 *     changes the old table meanwhile: its content is frozen and equals the new table's content. A
 *     reader that reads the old table in that window sees exactly the current index state.
 *  2. The new table is built in the other half of the index area and made reachable by one atomic
 *     8-byte store of the descriptor; a reader that loads the descriptor sees a complete table.
 *  3. Before the lock is released, every old bucket (overflow buckets included) is stamped with the
 *     retired version. Later updates go to the new table only, and a reader holding the old geometry
 *     finds a version word that differs from its cached version and re-reads the descriptor. So a
 *     reader's bucket read either happened while the old table was still exact, or it is detected as
 *     stale.
 *  4. The old half is reused only by the next growth, a whole table generation later; even a reader
 *     stalled between its descriptor and bucket reads then finds version words that do not match.
 * Returns the new table, or null, having published nothing, when the other half has no room for it
 * (then the writer falls back to overflow buckets in the current half).
 *
 * With `flush` (durability 'sync') the same order holds in the region's file: the new table is
 * flushed before the descriptor is stored, and the descriptor before the old buckets are retired,
 * so after an OS crash the file's descriptor names a complete table whose buckets are not retired.
 */
export function growTable(
  region: Region,
  old: TableDescriptor,
  flush: RegionFlush = noFlush,
): TableDescriptor | null {
  const h = new HeaderAccess(region);
  if (h.u32(IndexHeader.growthFailedVersion) === old.version) return null;
  const halfBytes = h.u64(IndexHeader.halfBytes);
  const bucketCount = old.bucketCount * 2;
  const version = old.version + 1;
  const activeHalf = h.u32(IndexHeader.activeHalf);
  const start = h.u64(IndexHeader.dataOffset) + (1 - activeHalf) * halfBytes;
  if (bucketCount * IndexBucket.bytes > halfBytes || version > tableVersionMax) {
    h.setU32(IndexHeader.growthFailedVersion, old.version);
    return null;
  }
  for (let i = 0; i < bucketCount; i++) initBucket(region, start + i * IndexBucket.bytes, version);
  const grown: TableDescriptor = { version, bucketsOffset: start, bucketCount };
  const copier = new TableCopier(region, grown, start + halfBytes);
  const hopsMax = halfBytes / IndexBucket.bytes;
  if (!forEachBucket(region, old, hopsMax, (bucket) => copier.copyBucket(bucket))) {
    h.setU32(IndexHeader.growthFailedVersion, old.version);
    return null;
  }
  flush();
  Atomics.store(region.i64, (h.at + IndexHeader.descriptor) / 8, packDescriptor(grown));
  h.setU32(IndexHeader.activeHalf, 1 - activeHalf);
  setU64(region.view, h.at + IndexHeader.bumpOffset, copier.bump);
  h.setU32(IndexHeader.overflowBuckets, copier.overflowBuckets);
  h.setU32(IndexHeader.growths, h.u32(IndexHeader.growths) + 1);
  flush();
  const retired = BigInt(IndexBucket.retiredVersion);
  forEachBucket(region, old, hopsMax, (bucket) => {
    Atomics.store(region.i64, (bucket + IndexBucket.version) / 8, retired);
    return true;
  });
  return grown;
}

/** Writes an empty bucket of table `version`: slots and overflow first, the version word last. */
export function initBucket(region: Region, bucket: number, version: number): void {
  for (let w = 1; w < 8; w++) Atomics.store(region.i64, bucket / 8 + w, 0n);
  Atomics.store(region.i64, bucket / 8, BigInt(version));
}

/** Calls `fn` on every bucket of table `t`, overflow buckets included; false if `fn` said stop. */
function forEachBucket(
  region: Region,
  t: TableDescriptor,
  hopsMax: number,
  fn: (bucket: number) => boolean,
): boolean {
  for (let i = 0; i < t.bucketCount; i++) {
    let bucket = t.bucketsOffset + i * IndexBucket.bytes;
    for (let hops = 0; bucket !== 0; hops++) {
      assert(hops <= hopsMax, 'index bucket chains are acyclic');
      const next = getU64(region.view, bucket + IndexBucket.overflow);
      if (!fn(bucket)) return false;
      bucket = next;
    }
  }
  return true;
}

class HeaderAccess {
  readonly at: number;
  private readonly view: DataView;

  constructor(region: Region) {
    this.at = region.geometry.indexOffset;
    this.view = region.view;
  }

  u32(field: number): number {
    return this.view.getUint32(this.at + field, true);
  }

  setU32(field: number, value: number): void {
    this.view.setUint32(this.at + field, value, true);
  }

  u64(field: number): number {
    return getU64(this.view, this.at + field);
  }
}

/** Copies slots of an old table into a new one during growth, allocating overflow buckets as needed. */
class TableCopier {
  bump: number;
  overflowBuckets = 0;
  private readonly region: Region;
  private readonly table: TableDescriptor;
  private readonly limit: number;

  constructor(region: Region, table: TableDescriptor, limit: number) {
    this.region = region;
    this.table = table;
    this.limit = limit;
    this.bump = table.bucketsOffset + table.bucketCount * IndexBucket.bytes;
  }

  /** Copies every slot of `bucket`; false when the new half ran out of overflow buckets. */
  copyBucket(bucket: number): boolean {
    const { view, bytes } = this.region;
    for (let s = 0; s < IndexBucket.slotCount; s++) {
      const at = bucket + IndexBucket.firstSlot + s * 8;
      const slot = view.getBigInt64(at, true);
      if (slot === 0n) continue;
      const entryOffset = slotEntryOffset(view.getUint32(at + 4, true), view.getUint32(at, true));
      const keyLen = view.getUint16(entryOffset + Entry.keyLen, true);
      const hash = hashKey(
        bytes.subarray(entryOffset + Entry.key, entryOffset + Entry.key + keyLen),
      );
      if (!this.place(hash, slot)) return false;
    }
    return true;
  }

  private place(hash: number, slot: bigint): boolean {
    const view = this.region.view;
    let bucket =
      this.table.bucketsOffset + (hash & (this.table.bucketCount - 1)) * IndexBucket.bytes;
    for (;;) {
      for (let s = 0; s < IndexBucket.slotCount; s++) {
        const at = bucket + IndexBucket.firstSlot + s * 8;
        if (view.getBigInt64(at, true) === 0n) {
          view.setBigInt64(at, slot, true);
          return true;
        }
      }
      const next = getU64(view, bucket + IndexBucket.overflow);
      if (next !== 0) {
        bucket = next;
        continue;
      }
      if (this.bump + IndexBucket.bytes > this.limit) return false;
      const fresh = this.bump;
      this.bump += IndexBucket.bytes;
      this.overflowBuckets++;
      view.setBigUint64(fresh, BigInt(this.table.version), true);
      for (let w = 1; w < 8; w++) view.setBigInt64(fresh + w * 8, 0n, true);
      setU64(view, bucket + IndexBucket.overflow, fresh);
      bucket = fresh;
    }
  }
}
