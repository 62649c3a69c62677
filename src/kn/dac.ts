import { DinomoError } from '../errors/index.js';
import { assert } from '../util/assert.js';
import { checkDac, statsFromCounters, type DacStats } from './dac-check.js';
import {
  DacCounter,
  NodeField,
  dacLayout,
  dacLayoutVersion,
  dacValueOverheadBytes,
  shortcutChargeBytes,
  valueChargeBytes,
} from './dac-layout.js';
import { DacEntries } from './dac-entries.js';
import { DacLfu, LfuSelect } from './dac-lfu.js';
import { resolveDacOptions, type DacOptions, type ResolvedDacOptions } from './dac-options.js';
import { DacStore, type DacShortcut } from './dac-store.js';

export type { DacOptions } from './dac-options.js';
export type { DacShortcut } from './dac-store.js';
export { dacEntryOverheadBytes, dacValueOverheadBytes, DacCounter } from './dac-layout.js';
export { readDacStats, type DacStats } from './dac-check.js';

export const DacHit = { miss: 0, value: 1, shortcut: 2 } as const;
export type DacHitKind = (typeof DacHit)[keyof typeof DacHit];

/**
 * The disaggregated adaptive cache of one KN thread (DESIGN.md section 7). Per key it holds either
 * the value (a hit costs no round trip) or a shortcut into the DPM log (a hit costs one). It is the
 * original DINOMO algorithm (dinomo-original.md section 4.2) with its bugs fixed:
 * - sizes are real: each entry is charged key + value + fixed metadata (dac-layout.ts), and
 *   `bytesUsed <= capacityBytes` holds after every call;
 * - a shortcut is promoted over evicted shortcuts iff freq > (missCost - 1) x their hits (the
 *   original used missCost), and the promoted key is never among the evicted (original bug 18);
 * - `insert` always stores the new shortcut, also when the key is or becomes a value (bug 1b);
 * - missCost is an EWMA of measured round trips per miss, not a truncated integer;
 * - frequencies halve every `decayEveryAccesses` lookups and inserts, so old hot keys can leave.
 *
 * All state lives in a SharedArrayBuffer arena (see dac-layout.ts). `lookup`, `insert` and
 * `afterShortcutRead` allocate no JS objects (the `valueView` getter creates one view; `valueBytes`,
 * `valueOffset` and `valueLength` avoid even that). One Dac belongs to one thread; other threads
 * may only read its counters (`readDacStats`).
 */
export class Dac {
  /** The arena size for these options: at most 2 x capacityBytes + 20 x entriesMax + 9 KiB. */
  static arenaBytesFor(options: DacOptions): number {
    const resolved = resolveDacOptions(options);
    return dacLayout(resolved.capacityBytes, resolved.entriesMax).totalBytes;
  }

  readonly arena: SharedArrayBuffer;
  /** After a shortcut hit: the shortcut (one reused object, overwritten by the next hit). */
  readonly shortcut: DacShortcut = { entryOffset: 0, entryBytes: 0, generation: 0 };
  private readonly options: ResolvedDacOptions;
  private readonly store: DacStore;
  private readonly lfu: DacLfu;
  private readonly c: Float64Array;
  private hitValueOffset = 0;
  private hitValueLength = 0;
  private readonly entries: DacEntries;

  constructor(options: DacOptions, arena?: SharedArrayBuffer) {
    this.options = resolveDacOptions(options);
    const layout = dacLayout(this.options.capacityBytes, this.options.entriesMax);
    if (
      arena !== undefined &&
      (!(arena instanceof SharedArrayBuffer) || arena.byteLength < layout.totalBytes)
    ) {
      throw new DinomoError(
        'INVALID_OPTION',
        `the DAC arena must be a SharedArrayBuffer of at least ${layout.totalBytes} bytes (Dac.arenaBytesFor)`,
      );
    }
    this.arena = arena ?? new SharedArrayBuffer(layout.totalBytes);
    this.store = new DacStore(this.arena, layout);
    this.lfu = new DacLfu(this.store);
    this.entries = new DacEntries(this.store, this.lfu);
    this.c = this.store.counters;
    this.store.reset();
    this.c.fill(0);
    this.c[DacCounter.layoutVersion] = dacLayoutVersion;
    this.c[DacCounter.capacityBytes] = this.options.capacityBytes;
    this.c[DacCounter.missCost] = this.options.missCostInitial;
    this.c[DacCounter.heapBytes] = layout.heapBytes;
  }

  /** Round trips a miss costs, smoothed (see recordMissCost). */
  get missCost(): number {
    return this.c[DacCounter.missCost] as number;
  }

  /** After a value hit: the value, as a view into the arena valid until the next mutating call. */
  get valueView(): Uint8Array {
    return this.store.heapU8.subarray(
      this.hitValueOffset,
      this.hitValueOffset + this.hitValueLength,
    );
  }

  /** Allocation-free access to the last value hit: `valueBytes[valueOffset, valueOffset + valueLength)`. */
  get valueBytes(): Uint8Array {
    return this.store.heapU8;
  }

  get valueOffset(): number {
    return this.hitValueOffset;
  }

  get valueLength(): number {
    return this.hitValueLength;
  }

  /** Finds `key`: a value hit moves it to the LRU front, a shortcut hit bumps its LFU frequency. */
  lookup(key: Uint8Array, hash: number): DacHitKind {
    this.entries.bump(DacCounter.lookups, 1);
    const node = this.store.find(key, hash);
    let hit: DacHitKind = DacHit.miss;
    if (node !== 0 && this.store.isValue(node)) {
      this.store.lruTouch(node);
      this.entries.addFrequency(node);
      this.hitValueOffset = this.store.get(node, NodeField.valuePtr);
      this.hitValueLength = this.store.get(node, NodeField.valueLength);
      this.entries.bump(DacCounter.valueHits, 1);
      hit = DacHit.value;
    } else if (node !== 0) {
      this.entries.touchShortcut(node);
      this.store.readShortcut(node, this.shortcut);
      this.entries.bump(DacCounter.shortcutHits, 1);
      hit = DacHit.shortcut;
    }
    this.countAccess();
    return hit;
  }

  /**
   * After a shortcut hit and its one-round-trip read: decides whether the key becomes a value. Pass
   * the shortcut that was read as `readShortcut` whenever other requests may have run in between:
   * if a write refreshed the shortcut meanwhile, `value` may be stale and is not cached.
   */
  afterShortcutRead(
    key: Uint8Array,
    hash: number,
    value: Uint8Array,
    readShortcut?: DacShortcut,
  ): void {
    const node = this.store.find(key, hash);
    if (node === 0 || this.store.isValue(node)) return;
    if (readShortcut !== undefined && !this.store.shortcutEquals(node, readShortcut)) return;
    this.tryPromote(node, this.outsideArena(value));
    this.endCall();
  }

  /** After a committed write or a miss fill: caches `value` and ALWAYS stores `shortcut` (fixes bug 1b). */
  insert(key: Uint8Array, hash: number, value: Uint8Array, shortcut: DacShortcut): void {
    value = this.outsideArena(value);
    const node = this.store.find(key, hash);
    if (node === 0) {
      this.insertNew(this.outsideArena(key), hash, value, shortcut);
    } else {
      this.store.writeShortcut(node, shortcut);
      if (this.store.isValue(node)) {
        this.updateValue(node, value);
      } else {
        this.entries.touchShortcut(node);
        this.tryPromote(node, value);
      }
    }
    this.countAccess();
    this.endCall();
  }

  remove(key: Uint8Array, hash: number): boolean {
    const node = this.store.find(key, hash);
    if (node === 0) return false;
    this.entries.remove(node);
    this.endCall();
    return true;
  }

  /** Drops every entry whose key matches (a handoff drops only the moved slots). The key view is valid during the call only. */
  removeWhere(predicate: (key: Uint8Array) => boolean): number {
    const nodes = this.entries.collectNodes();
    let removed = 0;
    for (const node of nodes) {
      if (!predicate(this.store.keyView(node))) continue;
      this.entries.remove(node);
      removed++;
    }
    this.endCall();
    return removed;
  }

  clear(): void {
    this.store.reset();
    for (const counter of [
      DacCounter.bytesUsed,
      DacCounter.values,
      DacCounter.shortcuts,
      DacCounter.valueBytes,
    ]) {
      this.c[counter] = 0;
    }
    this.endCall();
  }

  /** Feeds one measured miss (round trips it took) into the EWMA of missCost. */
  recordMissCost(rts: number): void {
    assert(
      Number.isFinite(rts) && rts >= 0,
      'a miss costs a finite, non-negative number of round trips',
    );
    this.c[DacCounter.missCost] =
      this.missCost + this.options.missCostSmoothing * (rts - this.missCost);
  }

  stats(): DacStats {
    return statsFromCounters(this.c);
  }

  /** Walks every structure and checks it against the counters (tests and debugging; O(n)). */
  checkInvariants(): void {
    checkDac(this.store, this.lfu, this.options.capacityBytes);
  }

  /**
   * Bytes that live in the arena itself (a `valueView` or a key view handed back by the caller) may
   * be freed and overwritten while the call makes room, so they are copied out first. Rare: this is
   * the only allocation on the insert path.
   */
  private outsideArena(bytes: Uint8Array): Uint8Array {
    return bytes.buffer === this.arena ? bytes.slice() : bytes;
  }

  private endCall(): void {
    this.c[DacCounter.heapBytesUsed] = this.store.allocator.usedBytes;
    assert(this.entries.bytesUsed <= this.options.capacityBytes, 'DAC over its byte budget');
  }

  private insertNew(key: Uint8Array, hash: number, value: Uint8Array, shortcut: DacShortcut): void {
    const capacity = this.options.capacityBytes;
    const shortcutBytes = shortcutChargeBytes(key.length);
    // A key that cannot fit even as a shortcut is not cached at all.
    if (shortcutBytes > capacity) return;
    const asValue =
      !this.options.shortcutsOnly &&
      this.entries.bytesUsed + valueChargeBytes(key.length, value.length) <= capacity;
    if (!asValue) this.makeRoom(shortcutBytes);
    if (this.entries.count >= this.options.entriesMax) this.evictForNode();
    const node = this.entries.createNode(key, hash, shortcut);
    if (asValue) this.entries.addValue(node, value);
    else this.entries.addShortcut(node);
  }

  /** A write to a cached value: replace it in place, or re-account a new size. */
  private updateValue(node: number, value: Uint8Array): void {
    this.store.lruTouch(node);
    this.entries.addFrequency(node);
    const oldLength = this.store.get(node, NodeField.valueLength);
    if (value.length === oldLength) {
      this.store.heapU8.set(value, this.store.get(node, NodeField.valuePtr));
      return;
    }
    const capacity = this.options.capacityBytes;
    if (valueChargeBytes(this.store.keyLength(node), value.length) > capacity) {
      this.entries.demote(node);
      return;
    }
    // A grown value needs room as a promotion does: evict shortcuts if the cost test allows, else demote.
    const over = this.entries.bytesUsed + value.length - oldLength - capacity;
    if (over > 0 && !this.evictForPromotion(node, over)) {
      this.entries.demote(node);
      return;
    }
    this.entries.replaceValue(node, value);
  }

  /** The promotion rule for a shortcut `node` whose current value is `value`. */
  private tryPromote(node: number, value: Uint8Array): void {
    if (this.options.shortcutsOnly) return;
    const capacity = this.options.capacityBytes;
    if (valueChargeBytes(this.store.keyLength(node), value.length) > capacity) return;
    const over = this.entries.bytesUsed + dacValueOverheadBytes + value.length - capacity;
    if (over > 0 && !this.evictForPromotion(node, over)) return;
    this.entries.promote(node, value);
  }

  /**
   * Frees `over` bytes for `node` by evicting the least-frequent other shortcuts, iff that pays:
   * a value saves 1 RT per hit of `node`, each evicted shortcut costs missCost - 1 more RTs per hit.
   * `node` itself is never a victim (original bug 18 evicted it when missCost was 0).
   */
  private evictForPromotion(node: number, over: number): boolean {
    const frequency = this.store.get(node, NodeField.frequency);
    const factor = this.missCost - 1;
    if (this.lfu.select(node, over, frequency, factor) !== LfuSelect.enough) return false;
    if (!(frequency > factor * this.lfu.victimHits)) return false;
    const victims = this.lfu.victimCount;
    for (let i = 0; i < victims; i++) this.entries.evictShortcut(this.lfu.victim(i));
    return true;
  }

  /** Frees bytes for a new shortcut: demote LRU values, or evict LFU shortcuts when no value is left. */
  private makeRoom(bytes: number): void {
    while (this.entries.bytesUsed + bytes > this.options.capacityBytes) {
      const tail = this.store.lruTail;
      if (tail !== 0) {
        this.entries.demote(tail);
        continue;
      }
      const victim = this.lfu.min();
      assert(victim !== 0, 'DAC is empty yet over budget');
      this.entries.evictShortcut(victim);
    }
  }

  /**
   * The node limit is reached, which only a small `entriesMax` option allows (by default the byte
   * budget binds first): drop the LFU shortcut, or the LRU value if there is none.
   */
  private evictForNode(): void {
    const victim = this.lfu.min();
    if (victim !== 0) {
      this.entries.evictShortcut(victim);
      return;
    }
    this.entries.remove(this.store.lruTail);
    this.entries.bump(DacCounter.evictions, 1);
  }

  /** Counts a lookup or insert; every `decayEveryAccesses` of them, all frequencies halve. */
  private countAccess(): void {
    const accesses = (this.c[DacCounter.accessesSinceDecay] as number) + 1;
    if (accesses < this.options.decayEveryAccesses) {
      this.c[DacCounter.accessesSinceDecay] = accesses;
      return;
    }
    this.c[DacCounter.accessesSinceDecay] = 0;
    this.entries.halveFrequencies();
    this.entries.bump(DacCounter.decays, 1);
  }
}
