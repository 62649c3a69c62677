import { assert } from '../util/assert.js';
import { Control, NodeField, shortcutChargeBytes } from './dac-layout.js';
import type { DacStore } from './dac-store.js';

/** The outcome of `DacLfu.select`. */
export const LfuSelect = {
  /** The victims free enough bytes; `victimHits` is their summed frequency. */
  enough: 0,
  /** Evicting every other shortcut would still not free enough bytes. */
  exhausted: 1,
  /** The victims' hits already outweigh the candidate's: the promotion test can only fail. */
  tooCostly: 2,
} as const;
export type LfuSelectResult = (typeof LfuSelect)[keyof typeof LfuSelect];

/**
 * The shortcut order of the DAC: a binary min-heap of node offsets in the arena, ordered by
 * (frequency, stamp). The stamp is when the node last entered or moved in the order, so among
 * equal frequencies the oldest leaves first, as in the original's frequency multimap. Each node
 * keeps its heap index (NodeField.heapIndex), so removal and re-ordering are O(log n).
 *
 * Decay halves every frequency; halving can break ties differently, so the heap is rebuilt (O(n)),
 * which the caller amortizes over many accesses.
 */
export class DacLfu {
  private readonly store: DacStore;
  private readonly heap: Uint32Array;
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;
  /** Scratch for `select`: candidate heap indices and chosen victims. Grown on demand, then reused. */
  private candidates: Uint32Array = new Uint32Array(64);
  private victimList: Uint32Array = new Uint32Array(64);
  victimCount = 0;
  victimHits = 0;

  constructor(store: DacStore) {
    this.store = store;
    this.heap = store.lfuArray;
    this.u32 = store.heapU32;
    this.f64 = store.heapF64;
  }

  get size(): number {
    return this.store.control[Control.lfuSize] as number;
  }

  private setSize(size: number): void {
    this.store.control[Control.lfuSize] = size;
  }

  /** The least-frequent shortcut, or 0. */
  min(): number {
    return this.size === 0 ? 0 : (this.heap[0] as number);
  }

  victim(i: number): number {
    return this.victimList[i] as number;
  }

  push(node: number): void {
    const size = this.size;
    assert(size < this.heap.length, 'DAC LFU heap overflow');
    this.setSize(size + 1);
    this.place(size, node);
    this.siftUp(size);
  }

  remove(node: number): void {
    const index = this.u32[(node >>> 2) + NodeField.heapIndex] as number;
    assert(this.heap[index] === node, 'DAC node not at its LFU heap index');
    const last = this.size - 1;
    this.setSize(last);
    if (index === last) return;
    this.place(index, this.heap[last] as number);
    this.siftDown(index);
    this.siftUp(index);
  }

  /** Restores the order after the node's frequency or stamp grew. */
  increased(node: number): void {
    this.siftDown(this.u32[(node >>> 2) + NodeField.heapIndex] as number);
  }

  /** Halves every frequency and rebuilds the order. */
  halveAll(): void {
    const size = this.size;
    for (let i = 0; i < size; i++) {
      const w = ((this.heap[i] as number) >>> 2) + NodeField.frequency;
      this.u32[w] = (this.u32[w] as number) >>> 1;
    }
    for (let i = (size >>> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** Calls `visit` with every shortcut node, in heap order. */
  forEach(visit: (node: number) => void): void {
    const size = this.size;
    for (let i = 0; i < size; i++) visit(this.heap[i] as number);
  }

  /**
   * Picks shortcuts other than `skip` in increasing (frequency, stamp) order until their charges add
   * up to `bytesNeeded`. The heap is not modified: a small side heap of candidate indices walks it
   * in order (the k smallest of n in O(k log k)). With `factor` > 0 the walk stops as soon as
   * `frequency > factor * victimHits` has become false, since more victims only add hits.
   */
  select(skip: number, bytesNeeded: number, frequency: number, factor: number): LfuSelectResult {
    this.victimCount = 0;
    this.victimHits = 0;
    let bytes = 0;
    let count = 0;
    if (this.size > 0) count = this.candidatePush(0, 0);
    while (count > 0) {
      const index = this.candidates[0] as number;
      count = this.candidatePop(count);
      const left = 2 * index + 1;
      if (left < this.size) count = this.candidatePush(count, left);
      if (left + 1 < this.size) count = this.candidatePush(count, left + 1);
      const node = this.heap[index] as number;
      if (node === skip) continue;
      if (this.victimCount === this.victimList.length) this.victimList = grow(this.victimList);
      this.victimList[this.victimCount++] = node;
      this.victimHits += this.u32[(node >>> 2) + NodeField.frequency] as number;
      bytes += shortcutChargeBytes(this.store.keyLength(node));
      if (bytes >= bytesNeeded) return LfuSelect.enough;
      if (factor > 0 && !(frequency > factor * this.victimHits)) return LfuSelect.tooCostly;
    }
    return LfuSelect.exhausted;
  }

  private less(a: number, b: number): boolean {
    const fa = this.u32[(a >>> 2) + NodeField.frequency] as number;
    const fb = this.u32[(b >>> 2) + NodeField.frequency] as number;
    return fa < fb || (fa === fb && (this.f64[a >>> 3] as number) < (this.f64[b >>> 3] as number));
  }

  private place(index: number, node: number): void {
    this.heap[index] = node;
    this.u32[(node >>> 2) + NodeField.heapIndex] = index;
  }

  private siftUp(index: number): void {
    const node = this.heap[index] as number;
    while (index > 0) {
      const parent = (index - 1) >>> 1;
      const up = this.heap[parent] as number;
      if (!this.less(node, up)) break;
      this.place(index, up);
      index = parent;
    }
    this.place(index, node);
  }

  private siftDown(index: number): void {
    const size = this.size;
    const node = this.heap[index] as number;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= size) break;
      const right = child + 1;
      if (right < size && this.less(this.heap[right] as number, this.heap[child] as number))
        child = right;
      const down = this.heap[child] as number;
      if (!this.less(down, node)) break;
      this.place(index, down);
      index = child;
    }
    this.place(index, node);
  }

  /** Pushes heap index `index` on the candidate side heap of `count` entries; returns the new count. */
  private candidatePush(count: number, index: number): number {
    if (count === this.candidates.length) this.candidates = grow(this.candidates);
    const c = this.candidates;
    let at = count;
    while (at > 0) {
      const parent = (at - 1) >>> 1;
      const up = c[parent] as number;
      if (!this.less(this.heap[index] as number, this.heap[up] as number)) break;
      c[at] = up;
      at = parent;
    }
    c[at] = index;
    return count + 1;
  }

  /** Removes the smallest candidate; returns the new count. */
  private candidatePop(count: number): number {
    const c = this.candidates;
    const last = count - 1;
    const moved = c[last] as number;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= last) break;
      const right = child + 1;
      if (right < last && this.lessAt(c[right] as number, c[child] as number)) child = right;
      if (!this.lessAt(c[child] as number, moved)) break;
      c[at] = c[child] as number;
      at = child;
    }
    c[at] = moved;
    return last;
  }

  private lessAt(i: number, j: number): boolean {
    return this.less(this.heap[i] as number, this.heap[j] as number);
  }
}

function grow(array: Uint32Array): Uint32Array {
  const bigger = new Uint32Array(array.length * 2);
  bigger.set(array);
  return bigger;
}
