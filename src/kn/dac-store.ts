import { assert } from '../util/assert.js';
import { DacAllocator, allocatorControlWords } from './dac-allocator.js';
import {
  Control,
  NodeField,
  NodeKind,
  metaKeyLengthMask,
  metaKindShift,
  nodeFieldBytes,
  type DacLayout,
} from './dac-layout.js';

/** A shortcut into the DPM log: where the entry is and which block generation it was written in. */
export interface DacShortcut {
  entryOffset: number;
  entryBytes: number;
  generation: number;
}

const twoTo32 = 4294967296;

/**
 * The storage half of the DAC: typed-array views over the arena, node records, the hash table
 * (linear probing with backward-shift deletion, so no tombstones pile up) and the LRU list of
 * values. It knows nothing of the caching policy (dac.ts) or the LFU order (dac-lfu.ts).
 */
export class DacStore {
  readonly counters: Float64Array;
  readonly control: Uint32Array;
  readonly lfuArray: Uint32Array;
  readonly heapU8: Uint8Array;
  readonly heapU32: Uint32Array;
  readonly heapF64: Float64Array;
  readonly allocator: DacAllocator;
  private readonly table: Uint32Array;
  private readonly tableSlots: number;

  constructor(arena: SharedArrayBuffer, layout: DacLayout) {
    this.counters = new Float64Array(arena, layout.countersOffset, 32);
    this.control = new Uint32Array(arena, layout.controlOffset, Control.allocator);
    this.table = new Uint32Array(arena, layout.tableOffset, layout.tableSlots * 2);
    this.tableSlots = layout.tableSlots;
    this.lfuArray = new Uint32Array(arena, layout.lfuOffset, layout.entriesMax);
    this.heapU8 = new Uint8Array(arena, layout.heapOffset, layout.heapBytes);
    this.heapU32 = new Uint32Array(arena, layout.heapOffset, layout.heapBytes / 4);
    this.heapF64 = new Float64Array(arena, layout.heapOffset, layout.heapBytes / 8);
    const allocatorControl = new Uint32Array(
      arena,
      layout.controlOffset + Control.allocator * 4,
      allocatorControlWords,
    );
    this.allocator = new DacAllocator(allocatorControl, this.heapU32);
  }

  /** Forgets every entry (the counters are the caller's business). */
  reset(): void {
    this.table.fill(0);
    this.control.fill(0);
    this.allocator.reset();
  }

  get(node: number, field: number): number {
    return this.heapU32[(node >>> 2) + field] as number;
  }

  set(node: number, field: number, value: number): void {
    this.heapU32[(node >>> 2) + field] = value;
  }

  stamp(node: number): number {
    return this.heapF64[node >>> 3] as number;
  }

  setStamp(node: number, stamp: number): void {
    this.heapF64[node >>> 3] = stamp;
  }

  keyLength(node: number): number {
    return this.get(node, NodeField.meta) & metaKeyLengthMask;
  }

  isValue(node: number): boolean {
    return this.get(node, NodeField.meta) >>> metaKindShift === NodeKind.value;
  }

  setKind(node: number, kind: number): void {
    this.set(node, NodeField.meta, this.keyLength(node) | (kind << metaKindShift));
  }

  /** A view of the node's key bytes (allocates a view: not for hot paths). */
  keyView(node: number): Uint8Array {
    const start = node + nodeFieldBytes;
    return this.heapU8.subarray(start, start + this.keyLength(node));
  }

  /** Fills a freshly allocated node record: a shortcut with frequency 1, not yet in any list. */
  initNode(node: number, key: Uint8Array, hash: number, shortcut: DacShortcut): void {
    assert(key.length <= metaKeyLengthMask, 'DAC key longer than 65535 bytes');
    const w = node >>> 2;
    this.heapU32.fill(0, w, w + nodeFieldBytes / 4);
    this.set(node, NodeField.hash, hash);
    this.set(node, NodeField.meta, key.length | (NodeKind.shortcut << metaKindShift));
    this.set(node, NodeField.frequency, 1);
    this.heapU8.set(key, node + nodeFieldBytes);
    this.writeShortcut(node, shortcut);
  }

  writeShortcut(node: number, shortcut: DacShortcut): void {
    const offset = shortcut.entryOffset;
    assert(
      Number.isSafeInteger(offset) && offset >= 0,
      'shortcut entryOffset must be a safe non-negative integer',
    );
    this.set(node, NodeField.entryOffsetLow, offset >>> 0);
    this.set(node, NodeField.entryOffsetHigh, Math.floor(offset / twoTo32));
    this.set(node, NodeField.entryBytes, shortcut.entryBytes);
    this.set(node, NodeField.generation, shortcut.generation);
  }

  readShortcut(node: number, out: DacShortcut): void {
    out.entryOffset =
      this.get(node, NodeField.entryOffsetHigh) * twoTo32 +
      this.get(node, NodeField.entryOffsetLow);
    out.entryBytes = this.get(node, NodeField.entryBytes);
    out.generation = this.get(node, NodeField.generation);
  }

  shortcutEquals(node: number, shortcut: DacShortcut): boolean {
    return (
      this.get(node, NodeField.entryOffsetLow) === shortcut.entryOffset >>> 0 &&
      this.get(node, NodeField.entryOffsetHigh) === Math.floor(shortcut.entryOffset / twoTo32) &&
      this.get(node, NodeField.entryBytes) === shortcut.entryBytes >>> 0 &&
      this.get(node, NodeField.generation) === shortcut.generation >>> 0
    );
  }

  /** The node of `key`, or 0. */
  find(key: Uint8Array, hash: number): number {
    assert(hash >>> 0 === hash, 'DAC key hash must be an unsigned 32-bit integer (hashKey)');
    const table = this.table;
    let slot = hash % this.tableSlots;
    for (;;) {
      const node = table[2 * slot + 1] as number;
      if (node === 0) return 0;
      if (table[2 * slot] === hash && this.keyEquals(node, key)) return node;
      slot = slot + 1 === this.tableSlots ? 0 : slot + 1;
    }
  }

  private keyEquals(node: number, key: Uint8Array): boolean {
    const length = key.length;
    if (this.keyLength(node) !== length) return false;
    const bytes = this.heapU8;
    const start = node + nodeFieldBytes;
    for (let i = 0; i < length; i++) {
      if (bytes[start + i] !== key[i]) return false;
    }
    return true;
  }

  tableInsert(node: number): void {
    const hash = this.get(node, NodeField.hash);
    let slot = hash % this.tableSlots;
    while (this.table[2 * slot + 1] !== 0) slot = slot + 1 === this.tableSlots ? 0 : slot + 1;
    this.table[2 * slot] = hash;
    this.table[2 * slot + 1] = node;
  }

  /** Removes `node` from the table, shifting later entries of its probe run back into the hole. */
  tableRemove(node: number): void {
    const table = this.table;
    const slots = this.tableSlots;
    let hole = this.get(node, NodeField.hash) % slots;
    while (table[2 * hole + 1] !== node) {
      assert(table[2 * hole + 1] !== 0, 'DAC node missing from its hash table');
      hole = hole + 1 === slots ? 0 : hole + 1;
    }
    for (let next = hole + 1 === slots ? 0 : hole + 1; ; next = next + 1 === slots ? 0 : next + 1) {
      const moved = table[2 * next + 1] as number;
      if (moved === 0) break;
      const home = (table[2 * next] as number) % slots;
      // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
      const homeAfterHole =
        hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (homeAfterHole) continue;
      table[2 * hole] = table[2 * next] as number;
      table[2 * hole + 1] = moved;
      hole = next;
    }
    table[2 * hole] = 0;
    table[2 * hole + 1] = 0;
  }

  get lruHead(): number {
    return this.control[Control.lruHead] as number;
  }

  get lruTail(): number {
    return this.control[Control.lruTail] as number;
  }

  lruPushFront(node: number): void {
    const head = this.lruHead;
    this.set(node, NodeField.prev, 0);
    this.set(node, NodeField.next, head);
    if (head !== 0) this.set(head, NodeField.prev, node);
    else this.control[Control.lruTail] = node;
    this.control[Control.lruHead] = node;
  }

  lruRemove(node: number): void {
    const prev = this.get(node, NodeField.prev);
    const next = this.get(node, NodeField.next);
    if (prev !== 0) this.set(prev, NodeField.next, next);
    else this.control[Control.lruHead] = next;
    if (next !== 0) this.set(next, NodeField.prev, prev);
    else this.control[Control.lruTail] = prev;
    this.set(node, NodeField.prev, 0);
    this.set(node, NodeField.next, 0);
  }

  lruTouch(node: number): void {
    if (this.lruHead === node) return;
    this.lruRemove(node);
    this.lruPushFront(node);
  }
}
