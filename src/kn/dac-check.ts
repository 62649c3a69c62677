import { assert } from '../util/assert.js';
import {
  DacCounter,
  NodeField,
  dacLayoutVersion,
  dacValueOverheadBytes,
  shortcutChargeBytes,
} from './dac-layout.js';
import type { DacLfu } from './dac-lfu.js';
import type { DacStore } from './dac-store.js';

export interface DacStats {
  capacityBytes: number;
  /** Bytes charged for the cached entries (always <= capacityBytes). */
  bytesUsed: number;
  values: number;
  shortcuts: number;
  /** Bytes of cached values alone. */
  valueBytes: number;
  promotions: number;
  demotions: number;
  /** Shortcuts dropped for room (not removals by `remove`, `removeWhere` or `clear`). */
  evictions: number;
  missCost: number;
  lookups: number;
  valueHits: number;
  shortcutHits: number;
  decays: number;
  /** Times the heap had no block for an admitted entry, so one more entry had to give way. */
  fragmentationEvictions: number;
  heapBytes: number;
  /** Heap bytes in used blocks (headers and rounding included), as of the last mutating call. */
  heapBytesUsed: number;
}

export function statsFromCounters(c: Float64Array): DacStats {
  const at = (counter: number): number => c[counter] as number;
  return {
    capacityBytes: at(DacCounter.capacityBytes),
    bytesUsed: at(DacCounter.bytesUsed),
    values: at(DacCounter.values),
    shortcuts: at(DacCounter.shortcuts),
    valueBytes: at(DacCounter.valueBytes),
    promotions: at(DacCounter.promotions),
    demotions: at(DacCounter.demotions),
    evictions: at(DacCounter.evictions),
    missCost: at(DacCounter.missCost),
    lookups: at(DacCounter.lookups),
    valueHits: at(DacCounter.valueHits),
    shortcutHits: at(DacCounter.shortcutHits),
    decays: at(DacCounter.decays),
    fragmentationEvictions: at(DacCounter.fragmentationEvictions),
    heapBytes: at(DacCounter.heapBytes),
    heapBytesUsed: at(DacCounter.heapBytesUsed),
  };
}

/**
 * Reads the counters of a DAC from its arena, from any thread, without the Dac object (the
 * monitor's path). Returns undefined if the arena does not hold an initialized DAC.
 */
export function readDacStats(arena: SharedArrayBuffer): DacStats | undefined {
  if (arena.byteLength < 256) return undefined;
  const counters = new Float64Array(arena, 0, 32);
  if (counters[DacCounter.layoutVersion] !== dacLayoutVersion) return undefined;
  return statsFromCounters(counters);
}

/** Walks every structure of a DAC and checks it against its counters. O(n): for tests and debugging. */
export function checkDac(store: DacStore, lfu: DacLfu, capacityBytes: number): void {
  const c = store.counters;
  let bytes = 0;
  let valueBytes = 0;
  let values = 0;
  let prev = 0;
  for (let node = store.lruHead; node !== 0; node = store.get(node, NodeField.next)) {
    assert(store.isValue(node), 'a shortcut in the LRU list');
    assert(store.get(node, NodeField.prev) === prev, 'broken LRU back link');
    assert(
      store.find(store.keyView(node), store.get(node, NodeField.hash)) === node,
      'value not in the table',
    );
    const length = store.get(node, NodeField.valueLength);
    bytes += shortcutChargeBytes(store.keyLength(node)) + dacValueOverheadBytes + length;
    valueBytes += length;
    values++;
    prev = node;
  }
  assert(store.lruTail === prev, 'LRU tail is not the last node');
  const heap = store.lfuArray;
  for (let i = 0; i < lfu.size; i++) {
    const node = heap[i] as number;
    assert(!store.isValue(node), 'a value in the LFU heap');
    assert(store.get(node, NodeField.heapIndex) === i, 'stale LFU heap index');
    assert(
      store.find(store.keyView(node), store.get(node, NodeField.hash)) === node,
      'shortcut not in the table',
    );
    if (i > 0)
      assert(!lfuBefore(store, node, heap[(i - 1) >>> 1] as number), 'LFU heap order broken');
    bytes += shortcutChargeBytes(store.keyLength(node));
  }
  assert(values === c[DacCounter.values], 'value count drifted');
  assert(lfu.size === c[DacCounter.shortcuts], 'shortcut count drifted');
  assert(
    bytes === c[DacCounter.bytesUsed],
    `charged bytes drifted: ${bytes} vs ${c[DacCounter.bytesUsed]}`,
  );
  assert(valueBytes === c[DacCounter.valueBytes], 'value byte count drifted');
  assert(bytes <= capacityBytes, 'over the byte budget');
  assert(
    store.allocator.check() === values * 2 + lfu.size,
    'allocator blocks do not match the entries',
  );
}

function lfuBefore(store: DacStore, a: number, b: number): boolean {
  const fa = store.get(a, NodeField.frequency);
  const fb = store.get(b, NodeField.frequency);
  return fa < fb || (fa === fb && store.stamp(a) < store.stamp(b));
}
