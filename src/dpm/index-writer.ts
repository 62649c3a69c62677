import { DinomoError } from '../errors/index.js';
import { assert } from '../util/assert.js';
import { hashKey } from '../util/hash.js';
import { growTable, initBucket } from './index-growth.js';
import { lockMutex, unlockMutex } from './index-lock.js';
import {
  encodeSlot,
  fingerprintOf,
  newTableDescriptor,
  sizeHintClass,
  slotEntryOffset,
  slotFingerprint,
  unpackDescriptor,
} from './index-format.js';
import { Block, BlockState, IndexBucket, IndexHeader } from './layout.js';
import {
  Entry,
  EntryFlag,
  EntryOp,
  compareVersions,
  entryBytes,
  entryIsLinked,
  entryKeyEquals,
  entryLinkAt,
  entrySpan,
  newEntryHeader,
  readEntryHeader,
} from './log-entry.js';
import { noFlush, type RegionFlush } from './region-flush.js';
import { getU64, loadU32, setU64, storeU32, type Region } from './region.js';

/**
 * Most links a clover-mode merge follows from the indexed version looking for the merged one; a
 * longer walk means a broken chain (a cycle), which is a bug, not data.
 */
const chainHopsMax = 1 << 22;

/** What one log entry did to the index. */
export type ApplyOutcome = 'inserted' | 'replaced' | 'removed' | 'stale' | 'absent';

export interface IndexStats {
  entryCount: number;
  version: number;
  bucketCount: number;
  overflowBuckets: number;
  growths: number;
  /** Bytes still free in the half that holds the live table (for overflow buckets). */
  halfBytesFree: number;
}

/**
 * Keys per slot at which the table tries to double. At 25% a bucket holds 1.5 keys on average, so a
 * key rarely lands in an overflow bucket (which costs a third RT): with 50% (3 per 6-slot bucket) about
 * 0.1% of misses paid it, enough to lift the average miss cost above 2. The price is index space: 32 B
 * per key at the threshold. When the index area has no room to grow, inserts keep filling the slots
 * and overflow buckets of the current table, so the threshold never refuses an entry by itself.
 */
const growLoadFactor = 0.25;

/**
 * The DPM-side index writer. Every mutation happens under the index writer lock (one holder per merge
 * batch), and every word a one-sided reader may look at is written with one 8-byte atomic store, so
 * KN readers never lock and never see half a slot.
 *
 * Placement rules that keep readers simple: a key occupies at most one slot; a key's slot never moves
 * while the table lives (replace is in place, delete clears it, insert takes the first empty slot of
 * the key's bucket chain); overflow buckets are fully written before they are linked; tables are
 * replaced only by growth (index-growth.ts).
 *
 * With `flush` (durability 'sync'), "written before linked" holds in the region's file too: a new
 * overflow bucket, and the bump offset that allocated it, are flushed before the link, and growth
 * flushes the new table before publishing it (index-growth.ts). Slot stores need no flush of their
 * own: each is one 8-byte word, and the merge flushes them before storing its progress (merge.ts).
 */
export class IndexWriter {
  private readonly region: Region;
  private readonly flush: RegionFlush;
  private readonly at: number;
  private readonly lockIndex: number;
  private readonly table = newTableDescriptor();
  private readonly incoming = newEntryHeader();
  private readonly indexed = newEntryHeader();
  private locked = false;
  /** Set by findSlot: first empty slot on the chain (-1 = none) and the chain's last bucket. */
  private emptySlot = -1;
  private lastBucket = 0;
  private foundEntry = 0;
  private foundSlot = 0;

  constructor(region: Region, flush: RegionFlush = noFlush) {
    this.region = region;
    this.flush = flush;
    this.at = region.geometry.indexOffset;
    this.lockIndex = (this.at + IndexHeader.lock) / 4;
  }

  lock(): void {
    assert(!this.locked, 'the index writer lock is not re-entrant');
    lockMutex(this.region.i32, this.lockIndex);
    this.locked = true;
    unpackDescriptor(
      this.region.view.getBigInt64(this.at + IndexHeader.descriptor, true),
      this.table,
    );
  }

  unlock(): void {
    assert(this.locked, 'unlock without lock');
    this.locked = false;
    unlockMutex(this.region.i32, this.lockIndex);
  }

  withLock<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }

  /**
   * Applies the (already validated) log entry at region offset `entryOffset`: an upsert for a put, a
   * removal for a delete, in both cases only when the entry is newer than the indexed version. Blocks
   * whose last live entry this kills while they are in state `merged` become free and are appended to
   * `freed`. Throws REGION_FULL, having changed nothing, when the index area has no room for the key.
   */
  apply(entryOffset: number, freed: number[], byArrival = false): ApplyOutcome {
    assert(this.locked, 'apply needs the index writer lock');
    if (entryIsLinked(this.region.view, entryOffset)) return this.applyLinked(entryOffset);
    const { bytes, view } = this.region;
    const entry = readEntryHeader(view, entryOffset, this.incoming);
    const key = bytes.subarray(entryOffset + Entry.key, entryOffset + Entry.key + entry.keyLen);
    const hash = hashKey(key);
    const fp = fingerprintOf(hash);
    const slotAt = this.findSlot(key, hash, fp);
    const size = entryBytes(entry.keyLen, entry.valueLen);
    if (slotAt >= 0) {
      const oldEntry = this.foundEntry;
      const old = readEntryHeader(view, oldEntry, this.indexed);
      // `byArrival` is the mergeByArrival mutant: the newest arrival wins whatever its version.
      if (!byArrival && compareVersions(entry.epoch, entry.seq, old.epoch, old.seq) <= 0) {
        return 'stale';
      }
      const oldSize = entryBytes(old.keyLen, old.valueLen);
      if (entry.op === EntryOp.put) {
        this.storeWord(slotAt, this.slotFor(fp, entryOffset, entry.keyLen, entry.valueLen));
        this.addLive(entryOffset, 1, size, freed);
        this.addLive(oldEntry, -1, oldSize, freed);
        return 'replaced';
      }
      this.storeWord(slotAt, 0n);
      this.setHeaderU32(IndexHeader.entryCount, this.headerU32(IndexHeader.entryCount) - 1);
      this.addLive(oldEntry, -1, oldSize, freed);
      return 'removed';
    }
    if (entry.op !== EntryOp.put) return 'absent';
    this.insertNew(key, hash, fp, this.slotFor(fp, entryOffset, entry.keyLen, entry.valueLen));
    this.setHeaderU32(IndexHeader.entryCount, this.headerU32(IndexHeader.entryCount) + 1);
    this.addLive(entryOffset, 1, size, freed);
    return 'inserted';
  }

  /**
   * Clover mode (docs/baselines.md): a linked entry moves the index forward along its key's chain. If
   * following links from the indexed version reaches the entry, the entry is indexed; otherwise the
   * index is already past it, or the entry never won its link (a writer that lost a create), and
   * nothing changes. A key is created only by `createLinked`, so an unindexed key is left alone. The
   * entry's block is pinned either way: links or shortcuts may reach any version in it.
   */
  private applyLinked(entryOffset: number): ApplyOutcome {
    const { bytes, view } = this.region;
    this.pin(entryOffset);
    const entry = readEntryHeader(view, entryOffset, this.incoming);
    const key = bytes.subarray(entryOffset + Entry.key, entryOffset + Entry.key + entry.keyLen);
    const hash = hashKey(key);
    const fp = fingerprintOf(hash);
    const slotAt = this.findSlot(key, hash, fp);
    if (slotAt < 0) return 'absent';
    if (this.foundEntry === entryOffset || !this.reaches(this.foundEntry, entryOffset)) {
      return 'stale';
    }
    this.storeWord(slotAt, this.slotForLinked(fp, entryOffset, entry.keyLen, entry.valueLen));
    return 'replaced';
  }

  /**
   * Clover mode's create: indexes the linked entry at `entryOffset` as the first version of its key,
   * unless the key already has one. Returns the indexed version's offset: `entryOffset` when this
   * entry won, another when the key existed (the writer then links behind that chain instead). Throws
   * REGION_FULL, having changed nothing, when the index area has no room for the key.
   */
  createLinked(entryOffset: number): number {
    assert(this.locked, 'createLinked needs the index writer lock');
    const { bytes, view } = this.region;
    assert(entryIsLinked(view, entryOffset), 'only linked entries are created this way');
    const entry = readEntryHeader(view, entryOffset, this.incoming);
    const key = bytes.subarray(entryOffset + Entry.key, entryOffset + Entry.key + entry.keyLen);
    const hash = hashKey(key);
    const fp = fingerprintOf(hash);
    if (this.findSlot(key, hash, fp) >= 0) return this.foundEntry;
    this.insertNew(
      key,
      hash,
      fp,
      this.slotForLinked(fp, entryOffset, entry.keyLen, entry.valueLen),
    );
    this.setHeaderU32(IndexHeader.entryCount, this.headerU32(IndexHeader.entryCount) + 1);
    this.pin(entryOffset);
    return entryOffset;
  }

  /** True when following links from the linked entry at `from` reaches `target`. */
  private reaches(from: number, target: number): boolean {
    const view = this.region.view;
    let at = from;
    for (let hops = 0; hops < chainHopsMax; hops++) {
      this.checkEntryOffset(at);
      if (!entryIsLinked(view, at)) return false;
      const next = getU64(view, entryLinkAt(view, at));
      if (next === 0) return false;
      if (next === target) return true;
      at = next;
    }
    assert(false, 'clover chains are acyclic');
    return false;
  }

  /** Marks the block that holds `entryOffset` as pinned: it is never freed or cleaned. */
  private pin(entryOffset: number): void {
    const g = this.region.geometry;
    const block =
      g.blocksOffset + Math.floor((entryOffset - g.blocksOffset) / g.blockBytes) * g.blockBytes;
    if (loadU32(this.region, block + Block.pinned) === 0)
      storeU32(this.region, block + Block.pinned, 1);
  }

  /**
   * The cleaner's compare-and-replace: points the slot of the key stored at `copyOffset` (a copy of
   * the entry at `oldOffset`: same key, value and version) at the copy, but only if the slot still
   * points at `oldOffset`. False, having changed nothing, when a merge replaced or removed the key
   * meanwhile; then the copy is dead. The size hint is recomputed for the copy (it has the same size).
   */
  repoint(oldOffset: number, copyOffset: number, freed: number[]): boolean {
    assert(this.locked, 'repoint needs the index writer lock');
    const { bytes, view } = this.region;
    const copy = readEntryHeader(view, copyOffset, this.incoming);
    const key = bytes.subarray(copyOffset + Entry.key, copyOffset + Entry.key + copy.keyLen);
    const hash = hashKey(key);
    const fp = fingerprintOf(hash);
    if (this.findSlot(key, hash, fp) < 0 || this.foundEntry !== oldOffset) return false;
    const slotAt = this.foundSlot;
    const old = readEntryHeader(view, oldOffset, this.indexed);
    assert(
      old.keyLen === copy.keyLen &&
        old.valueLen === copy.valueLen &&
        compareVersions(old.epoch, old.seq, copy.epoch, copy.seq) === 0,
      'a cleaner copy has the key, size and version of its original',
    );
    const size = entryBytes(copy.keyLen, copy.valueLen);
    this.storeWord(slotAt, this.slotFor(fp, copyOffset, copy.keyLen, copy.valueLen));
    this.addLive(copyOffset, 1, size, freed);
    this.addLive(oldOffset, -1, size, freed);
    return true;
  }

  /**
   * Calls `fn` with the entry offset of every slot of the live table (overflow buckets included).
   * For checks and tests that recompute the blocks' live counts from the index.
   */
  forEachIndexed(fn: (entryOffset: number) => void): void {
    assert(this.locked, 'forEachIndexed needs the index writer lock');
    for (let i = 0; i < this.table.bucketCount; i++) this.forEachInBucket(i, fn);
  }

  /** The live table's version (it changes when the table grows); valid under the lock. */
  get tableVersion(): number {
    assert(this.locked, 'tableVersion needs the index writer lock');
    return this.table.version;
  }

  /**
   * DINOMO-N's partition copy (docs/baselines.md): appends to `out` a copy of every indexed key that
   * `accept` takes, bucket by bucket (each with its overflow chain) from bucket `fromBucket`, and
   * stops after the bucket in which `out` reached `keysMax`. Returns the next bucket to scan, or -1
   * when the table was scanned to its end. Bucket numbers belong to one table version (tableVersion):
   * a scan must start over when the table grew.
   */
  scanKeys(
    fromBucket: number,
    keysMax: number,
    accept: (key: Uint8Array) => boolean,
    out: Uint8Array[],
  ): number {
    assert(this.locked, 'scanKeys needs the index writer lock');
    const { bytes, view } = this.region;
    const collect = (entryOffset: number): void => {
      const keyLen = view.getUint16(entryOffset + Entry.keyLen, true);
      const key = bytes.subarray(entryOffset + Entry.key, entryOffset + Entry.key + keyLen);
      if (accept(key)) out.push(key.slice());
    };
    for (let i = fromBucket; i < this.table.bucketCount; i++) {
      this.forEachInBucket(i, collect);
      if (out.length >= keysMax) return i + 1 < this.table.bucketCount ? i + 1 : -1;
    }
    return -1;
  }

  /** Calls `fn` with the entry offset of every slot of bucket `i` of the live table and its chain. */
  private forEachInBucket(i: number, fn: (entryOffset: number) => void): void {
    const view = this.region.view;
    let bucket = this.table.bucketsOffset + i * IndexBucket.bytes;
    for (let hops = 0; bucket !== 0; hops++) {
      assert(hops <= this.chainHopsMax(), 'index bucket chains are acyclic');
      for (let s = 0; s < IndexBucket.slotCount; s++) {
        const at = bucket + IndexBucket.firstSlot + s * 8;
        const lo = view.getUint32(at, true);
        const hi = view.getUint32(at + 4, true);
        if (hi !== 0 || lo !== 0) fn(slotEntryOffset(hi, lo));
      }
      bucket = getU64(view, bucket + IndexBucket.overflow);
    }
  }

  /** The region offset of the entry indexed for `key`, or -1. For DPM-side checks and tests. */
  lookup(key: Uint8Array): number {
    assert(this.locked, 'lookup needs the index writer lock');
    const hash = hashKey(key);
    return this.findSlot(key, hash, fingerprintOf(hash)) >= 0 ? this.foundEntry : -1;
  }

  stats(): IndexStats {
    const view = this.region.view;
    const d = unpackDescriptor(
      view.getBigInt64(this.at + IndexHeader.descriptor, true),
      newTableDescriptor(),
    );
    const half = this.activeHalfStart();
    return {
      entryCount: this.headerU32(IndexHeader.entryCount),
      version: d.version,
      bucketCount: d.bucketCount,
      overflowBuckets: this.headerU32(IndexHeader.overflowBuckets),
      growths: this.headerU32(IndexHeader.growths),
      halfBytesFree:
        half + this.headerU64(IndexHeader.halfBytes) - this.headerU64(IndexHeader.bumpOffset),
    };
  }

  private slotFor(fp: number, entryOffset: number, keyLen: number, valueLen: number): bigint {
    return encodeSlot(fp, sizeHintClass(entryBytes(keyLen, valueLen)), entryOffset);
  }

  /** A slot whose size hint covers the link word too, so one read gets the entry and its link. */
  private slotForLinked(fp: number, entryOffset: number, keyLen: number, valueLen: number): bigint {
    return encodeSlot(
      fp,
      sizeHintClass(entrySpan(keyLen, valueLen, EntryFlag.linked)),
      entryOffset,
    );
  }

  private insertNew(key: Uint8Array, hash: number, fp: number, slot: bigint): void {
    const slotsTotal = this.table.bucketCount * IndexBucket.slotCount;
    if (
      this.headerU32(IndexHeader.entryCount) + 1 > slotsTotal * growLoadFactor &&
      this.tryGrow()
    ) {
      this.findSlot(key, hash, fp);
    }
    if (this.emptySlot >= 0) {
      this.storeWord(this.emptySlot, slot);
      return;
    }
    let bucket = this.allocBucket(this.activeHalfStart());
    if (bucket === 0 && this.tryGrow()) {
      this.findSlot(key, hash, fp);
      if (this.emptySlot >= 0) {
        this.storeWord(this.emptySlot, slot);
        return;
      }
      bucket = this.allocBucket(this.activeHalfStart());
    }
    if (bucket === 0) {
      throw new DinomoError(
        'REGION_FULL',
        `the DPM index area is full (${this.headerU32(IndexHeader.entryCount)} keys); ` +
          'raise indexBytes (or regionBytes) when formatting the region',
      );
    }
    initBucket(this.region, bucket, this.table.version);
    this.storeWord(bucket + IndexBucket.firstSlot, slot);
    // The new bucket is complete before the link makes it reachable for readers, and, with
    // durability 'sync', in the file before the link can be.
    this.flush();
    this.storeWord(this.lastBucket + IndexBucket.overflow, BigInt(bucket));
    this.setHeaderU32(IndexHeader.overflowBuckets, this.headerU32(IndexHeader.overflowBuckets) + 1);
  }

  /**
   * Scans the key's bucket chain. Returns the region offset of the key's slot (and sets foundEntry),
   * or -1; either way sets emptySlot (first free slot, -1 if none) and lastBucket.
   */
  private findSlot(key: Uint8Array, hash: number, fp: number): number {
    const view = this.region.view;
    const t = this.table;
    let bucket = t.bucketsOffset + (hash & (t.bucketCount - 1)) * IndexBucket.bytes;
    this.emptySlot = -1;
    for (let hops = 0; ; hops++) {
      assert(hops <= this.chainHopsMax(), 'index bucket chains are acyclic');
      for (let s = 0; s < IndexBucket.slotCount; s++) {
        const at = bucket + IndexBucket.firstSlot + s * 8;
        const lo = view.getUint32(at, true);
        const hi = view.getUint32(at + 4, true);
        if (hi === 0 && lo === 0) {
          if (this.emptySlot < 0) this.emptySlot = at;
          continue;
        }
        if (slotFingerprint(hi) !== fp) continue;
        const entryOffset = slotEntryOffset(hi, lo);
        this.checkEntryOffset(entryOffset);
        if (entryKeyEquals(this.region.bytes, view, entryOffset, key)) {
          this.foundEntry = entryOffset;
          this.foundSlot = at;
          return at;
        }
      }
      const next = getU64(view, bucket + IndexBucket.overflow);
      if (next === 0) break;
      bucket = next;
    }
    this.lastBucket = bucket;
    return -1;
  }

  /** Doubles the table if the other half has room (see growTable); true when it grew. */
  private tryGrow(): boolean {
    const grown = growTable(this.region, this.table, this.flush);
    if (grown === null) return false;
    Object.assign(this.table, grown);
    return true;
  }

  /** Takes one bucket from the bump allocator of the half at `halfStart`; 0 when it is full. */
  private allocBucket(halfStart: number): number {
    const bump = this.headerU64(IndexHeader.bumpOffset);
    if (bump + IndexBucket.bytes > halfStart + this.headerU64(IndexHeader.halfBytes)) return 0;
    setU64(this.region.view, this.at + IndexHeader.bumpOffset, bump + IndexBucket.bytes);
    return bump;
  }

  /**
   * Adjusts a block's live-entry and live-byte counts (`bytes` is the entry's padded size); frees a
   * `merged` block whose last live entry died. Blocks the cleaner owns (`cleanerOpen`, `cleaning`)
   * are never freed here: the cleaner frees them itself when it lets go of them.
   */
  private addLive(entryOffset: number, delta: 1 | -1, bytes: number, freed: number[]): void {
    const g = this.region.geometry;
    const block =
      g.blocksOffset + Math.floor((entryOffset - g.blocksOffset) / g.blockBytes) * g.blockBytes;
    const live = loadU32(this.region, block + Block.liveEntries) + delta;
    const liveBytes = loadU32(this.region, block + Block.liveBytes) + delta * bytes;
    assert(live >= 0 && liveBytes >= 0, 'a block never has fewer than zero live entries or bytes');
    assert((live === 0) === (liveBytes === 0), 'live bytes are zero exactly when no entry is live');
    storeU32(this.region, block + Block.liveEntries, live);
    storeU32(this.region, block + Block.liveBytes, liveBytes);
    if (
      live === 0 &&
      loadU32(this.region, block + Block.state) === BlockState.merged &&
      loadU32(this.region, block + Block.pinned) === 0
    ) {
      storeU32(this.region, block + Block.state, BlockState.free);
      freed.push(block);
    }
  }

  private checkEntryOffset(entryOffset: number): void {
    const g = this.region.geometry;
    assert(
      entryOffset >= g.blocksOffset && entryOffset < g.blocksOffset + g.blockCount * g.blockBytes,
      'index slots point into the block area',
    );
  }

  private chainHopsMax(): number {
    return this.headerU64(IndexHeader.halfBytes) / IndexBucket.bytes;
  }

  private activeHalfStart(): number {
    const half = this.headerU32(IndexHeader.activeHalf);
    return this.headerU64(IndexHeader.dataOffset) + half * this.headerU64(IndexHeader.halfBytes);
  }

  private storeWord(at: number, value: bigint): void {
    Atomics.store(this.region.i64, at / 8, value);
  }

  private headerU32(field: number): number {
    return this.region.view.getUint32(this.at + field, true);
  }

  private setHeaderU32(field: number, value: number): void {
    this.region.view.setUint32(this.at + field, value, true);
  }

  private headerU64(field: number): number {
    return getU64(this.region.view, this.at + field);
  }
}
