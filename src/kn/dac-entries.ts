import { assert } from '../util/assert.js';
import {
  DacCounter,
  NodeField,
  NodeKind,
  dacValueOverheadBytes,
  nodeFieldBytes,
  shortcutChargeBytes,
} from './dac-layout.js';
import type { DacLfu } from './dac-lfu.js';
import type { DacShortcut, DacStore } from './dac-store.js';

const frequencyMax = 0xffff_ffff;

/**
 * The state transitions of DAC entries (create, value <-> shortcut, evict, remove), each keeping the
 * lists, the heap blocks and the byte and entry counters exact. The policy (which transition, when)
 * is in dac.ts; this file only guarantees that every transition is complete.
 */
export class DacEntries {
  private readonly store: DacStore;
  private readonly lfu: DacLfu;
  private readonly c: Float64Array;
  private scratch: Uint32Array = new Uint32Array(64);

  constructor(store: DacStore, lfu: DacLfu) {
    this.store = store;
    this.lfu = lfu;
    this.c = store.counters;
  }

  get bytesUsed(): number {
    return this.c[DacCounter.bytesUsed] as number;
  }

  get count(): number {
    return (this.c[DacCounter.values] as number) + (this.c[DacCounter.shortcuts] as number);
  }

  bump(counter: number, delta: number): void {
    this.c[counter] = (this.c[counter] as number) + delta;
  }

  addFrequency(node: number): void {
    const frequency = this.store.get(node, NodeField.frequency);
    if (frequency < frequencyMax) this.store.set(node, NodeField.frequency, frequency + 1);
  }

  /** An LFU touch: one more hit, and the newest place among its equals. */
  touchShortcut(node: number): void {
    this.addFrequency(node);
    this.store.setStamp(node, this.nextStamp());
    this.lfu.increased(node);
  }

  /** A new node, in the table and charged as a shortcut, but in no list yet (the caller places it). */
  createNode(key: Uint8Array, hash: number, shortcut: DacShortcut): number {
    const node = this.allocate(nodeFieldBytes + key.length);
    this.store.initNode(node, key, hash, shortcut);
    this.store.tableInsert(node);
    this.bump(DacCounter.bytesUsed, shortcutChargeBytes(key.length));
    return node;
  }

  /** Puts a node that is in no list into the LFU order as a shortcut. */
  addShortcut(node: number): void {
    this.store.setStamp(node, this.nextStamp());
    this.lfu.push(node);
    this.bump(DacCounter.shortcuts, 1);
  }

  /** Gives a node that is in no list the value `value`, at the LRU front. */
  addValue(node: number, value: Uint8Array): void {
    this.attachValue(node, value);
    this.bump(DacCounter.values, 1);
  }

  /** Shortcut to value; the caller has made room. Its frequency carries over as the value's weight. */
  promote(node: number, value: Uint8Array): void {
    this.lfu.remove(node);
    this.bump(DacCounter.shortcuts, -1);
    this.addValue(node, value);
    this.bump(DacCounter.promotions, 1);
  }

  /** Value to shortcut, keeping its hits as LFU frequency (the original's weightPut). */
  demote(node: number): void {
    this.store.lruRemove(node);
    this.detachValue(node);
    this.bump(DacCounter.values, -1);
    this.addShortcut(node);
    this.bump(DacCounter.demotions, 1);
  }

  /** Replaces the bytes of a value with `value` of another length (the caller has made room). */
  replaceValue(node: number, value: Uint8Array): void {
    this.store.lruRemove(node);
    this.detachValue(node);
    this.attachValue(node, value);
  }

  evictShortcut(node: number): void {
    this.lfu.remove(node);
    this.dropNode(node);
    this.bump(DacCounter.shortcuts, -1);
    this.bump(DacCounter.evictions, 1);
  }

  /** Removes an entry of either kind. */
  remove(node: number): void {
    if (this.store.isValue(node)) {
      this.store.lruRemove(node);
      this.detachValue(node);
      this.bump(DacCounter.values, -1);
    } else {
      this.lfu.remove(node);
      this.bump(DacCounter.shortcuts, -1);
    }
    this.dropNode(node);
  }

  /** Halves every frequency: values' weights and shortcuts' LFU counts alike. */
  halveFrequencies(): void {
    for (let node = this.store.lruHead; node !== 0; node = this.store.get(node, NodeField.next)) {
      this.store.set(node, NodeField.frequency, this.store.get(node, NodeField.frequency) >>> 1);
    }
    this.lfu.halveAll();
  }

  /** Copies every node offset (values, then shortcuts) into a reused array; valid until the next call. */
  collectNodes(): Uint32Array {
    const total = this.count;
    if (this.scratch.length < total) this.scratch = new Uint32Array(total);
    let count = 0;
    for (let node = this.store.lruHead; node !== 0; node = this.store.get(node, NodeField.next)) {
      this.scratch[count++] = node;
    }
    this.lfu.forEach((node) => {
      this.scratch[count++] = node;
    });
    assert(count === total, 'DAC lists disagree with the entry counters');
    return this.scratch.subarray(0, count);
  }

  /**
   * Places `payloadBytes` in the heap. The budget admits the entry, but fragmentation can still leave
   * no block large enough: then demote LRU values (or evict LFU shortcuts) until one forms. The node
   * being placed is in no list at this point, so it is never a victim; once the heap holds only it,
   * any admitted block fits, because the heap is twice the budget plus slack (dac-layout.ts).
   */
  private allocate(payloadBytes: number): number {
    for (;;) {
      const payload = this.store.allocator.alloc(payloadBytes);
      if (payload !== 0) return payload;
      this.bump(DacCounter.fragmentationEvictions, 1);
      const tail = this.store.lruTail;
      if (tail !== 0) {
        this.demote(tail);
        continue;
      }
      const victim = this.lfu.min();
      assert(victim !== 0, 'DAC heap cannot place an entry that the budget admits');
      this.evictShortcut(victim);
    }
  }

  private nextStamp(): number {
    this.bump(DacCounter.stampClock, 1);
    return this.c[DacCounter.stampClock] as number;
  }

  private attachValue(node: number, value: Uint8Array): void {
    const payload = this.allocate(value.length);
    this.store.heapU8.set(value, payload);
    this.store.set(node, NodeField.valuePtr, payload);
    this.store.set(node, NodeField.valueLength, value.length);
    this.store.setKind(node, NodeKind.value);
    this.store.lruPushFront(node);
    this.bump(DacCounter.bytesUsed, dacValueOverheadBytes + value.length);
    this.bump(DacCounter.valueBytes, value.length);
  }

  /** Frees the value bytes of a node already out of the LRU list; it is a shortcut afterwards. */
  private detachValue(node: number): void {
    const length = this.store.get(node, NodeField.valueLength);
    this.store.allocator.free(this.store.get(node, NodeField.valuePtr));
    this.store.set(node, NodeField.valuePtr, 0);
    this.store.set(node, NodeField.valueLength, 0);
    this.store.setKind(node, NodeKind.shortcut);
    this.bump(DacCounter.bytesUsed, -(dacValueOverheadBytes + length));
    this.bump(DacCounter.valueBytes, -length);
  }

  /** Frees a node that is in no list and holds no value. */
  private dropNode(node: number): void {
    this.store.tableRemove(node);
    this.bump(DacCounter.bytesUsed, -shortcutChargeBytes(this.store.keyLength(node)));
    this.store.allocator.free(node);
  }
}
