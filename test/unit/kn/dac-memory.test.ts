import { describe, expect, it } from 'vitest';
import {
  Dac,
  DacCounter,
  DacHit,
  dacEntryOverheadBytes as O,
  dacValueOverheadBytes as V,
} from '../../../src/kn/dac.js';
import { hashKey } from '../../../src/util/hash.js';
import { SeededRandom } from '../../../src/util/random.js';

// Memory: the budget and the arena hold under heavy churn and with many entries.
const encoder = new TextEncoder();

describe('Dac memory', () => {
  it('stays within its budget and its arena through 200k random operations on 50k keys', () => {
    const capacityBytes = 1 << 20;
    const dac = new Dac({ capacityBytes, decayEveryAccesses: 50_000 });
    const counters = new Float64Array(dac.arena, 0, 32);
    const heapBytes = counters[DacCounter.heapBytes] as number;
    const random = new SeededRandom(42);
    const keys = Array.from({ length: 50_000 }, (_, i) =>
      encoder.encode(`key-${i}-${'k'.repeat(random.int(60))}`),
    );
    const hashes = keys.map((key) => hashKey(key));
    // The last write of each key: its value is `length` bytes of `offset & 0xff`.
    const latest = new Map<number, { offset: number; length: number }>();
    const fail = (message: string): never => {
      throw new Error(message);
    };
    let valueHits = 0;
    for (let op = 0; op < 200_000; op++) {
      // A skewed key choice, so that some keys are hot and promotions happen.
      const i = Math.floor(keys.length * random.next() ** 3);
      const key = keys[i] as Uint8Array;
      const hash = hashes[i] as number;
      const want = latest.get(i);
      const action = random.next();
      if (action < 0.35) {
        const r = random.next();
        const length = r < 0.6 ? random.int(64) : r < 0.95 ? random.int(4096) : random.int(200_000);
        const offset = op * 8;
        const value = new Uint8Array(length).fill(offset & 0xff);
        dac.insert(key, hash, value, { entryOffset: offset, entryBytes: length, generation: 1 });
        latest.set(i, { offset, length });
      } else if (action < 0.99) {
        const hit = dac.lookup(key, hash);
        if (hit !== DacHit.miss && want === undefined) fail(`op ${op}: hit on a key never written`);
        if (hit === DacHit.value && want !== undefined) {
          valueHits++;
          const view = dac.valueView;
          if (view.length !== want.length)
            fail(`op ${op}: value length ${view.length} != ${want.length}`);
          if (view.length > 0 && view[view.length - 1] !== (want.offset & 0xff))
            fail(`op ${op}: stale value`);
        } else if (hit === DacHit.shortcut && want !== undefined) {
          if (dac.shortcut.entryOffset !== want.offset) fail(`op ${op}: stale shortcut`);
          dac.afterShortcutRead(key, hash, new Uint8Array(want.length).fill(want.offset & 0xff));
        }
      } else {
        dac.remove(key, hash);
        latest.delete(i);
      }
      if ((counters[DacCounter.bytesUsed] as number) > capacityBytes) fail(`op ${op}: over budget`);
      if ((counters[DacCounter.heapBytesUsed] as number) > heapBytes)
        fail(`op ${op}: heap overflow`);
      if (op % 20_000 === 0) dac.checkInvariants();
    }
    dac.checkInvariants();
    const stats = dac.stats();
    expect(valueHits).toBeGreaterThan(10_000);
    expect(stats.promotions).toBeGreaterThan(0);
    expect(stats.demotions).toBeGreaterThan(0);
    expect(stats.evictions).toBeGreaterThan(0);
    expect(stats.bytesUsed).toBeGreaterThan(0.9 * capacityBytes);
    // Live blocks never take more than the charged bytes (see dacLayout), so at most half the heap.
    expect(stats.heapBytesUsed).toBeLessThanOrEqual(stats.bytesUsed);
  });

  it('holds 200k small entries in their exact charge', () => {
    const count = 200_000;
    const keyBytes = 12;
    const capacityBytes = count * (O + keyBytes + V + 8);
    const dac = new Dac({ capacityBytes });
    const key = new Uint8Array(keyBytes);
    const view = new DataView(key.buffer);
    const value = new Uint8Array(8);
    const shortcut = { entryOffset: 0, entryBytes: 48, generation: 0 };
    for (let i = 0; i < count; i++) {
      view.setUint32(0, i);
      shortcut.entryOffset = i * 64;
      dac.insert(key, hashKey(key), value, shortcut);
    }
    expect(dac.stats()).toMatchObject({
      values: count,
      shortcuts: 0,
      bytesUsed: capacityBytes,
      demotions: 0,
    });
    view.setUint32(0, count);
    dac.insert(key, hashKey(key), value, shortcut);
    // A shortcut needs 88 bytes and each demotion frees 16: six LRU values become shortcuts.
    expect(dac.stats()).toMatchObject({
      values: count - 6,
      shortcuts: 7,
      demotions: 6,
      evictions: 0,
    });
    dac.checkInvariants();
    for (let i = 0; i < count; i += 997) {
      view.setUint32(0, i);
      expect(dac.lookup(key, hashKey(key))).not.toBe(DacHit.miss);
    }
  });
});
