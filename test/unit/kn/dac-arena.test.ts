import { describe, expect, it } from 'vitest';
import { Dac, DacHit, type DacOptions } from '../../../src/kn/dac.js';
import { DacAllocator, allocatorControlWords } from '../../../src/kn/dac-allocator.js';
import { Control, dacLayout, dacEntryOverheadBytes } from '../../../src/kn/dac-layout.js';
import { hashKey } from '../../../src/util/hash.js';

const encoder = new TextEncoder();

/** A second allocator over the Dac's own heap and allocator state: it can take space behind the Dac's back. */
function shadowAllocator(options: DacOptions, arena: SharedArrayBuffer): DacAllocator {
  const layout = dacLayout(
    options.capacityBytes,
    Math.floor(options.capacityBytes / dacEntryOverheadBytes),
  );
  const control = new Uint32Array(
    arena,
    layout.controlOffset + Control.allocator * 4,
    allocatorControlWords,
  );
  return new DacAllocator(control, new Uint32Array(arena, layout.heapOffset, layout.heapBytes / 4));
}

describe('Dac heap fragmentation fallback', () => {
  it('evicts more entries when the budget admits an entry but the heap has no block for it', () => {
    const options = { capacityBytes: 16 * 1024 };
    const arena = new SharedArrayBuffer(Dac.arenaBytesFor(options));
    const dac = new Dac(options, arena);
    const keys = Array.from({ length: 10 }, (_, i) => encoder.encode(`v${i}`));
    for (const [i, key] of keys.entries()) {
      dac.insert(key, hashKey(key), new Uint8Array(500).fill(i), {
        entryOffset: i,
        entryBytes: 1,
        generation: 0,
      });
    }
    expect(dac.stats()).toMatchObject({ values: 10, fragmentationEvictions: 0 });
    // Ballast: fill every free byte of the heap, so only the Dac's own entries can make room.
    const shadow = shadowAllocator(options, arena);
    const ballast: number[] = [];
    for (const size of [1024, 64, 0]) {
      for (let p = shadow.alloc(size); p !== 0; p = shadow.alloc(size)) ballast.push(p);
    }
    const big = encoder.encode('big');
    const value = new Uint8Array(4000).fill(9);
    dac.insert(big, hashKey(big), value, { entryOffset: 99, entryBytes: 1, generation: 0 });
    const stats = dac.stats();
    // The 500-byte value blocks sit between node blocks: demoting them is not enough, shortcuts must go too.
    expect(stats.fragmentationEvictions).toBeGreaterThan(10);
    expect(stats.demotions).toBe(10);
    expect(stats.evictions).toBeGreaterThan(0);
    expect(stats.bytesUsed).toBeLessThanOrEqual(options.capacityBytes);
    expect(dac.lookup(big, hashKey(big))).toBe(DacHit.value);
    expect(dac.valueView).toEqual(value);
    for (const p of ballast) shadow.free(p);
    dac.checkInvariants();
  });
});

describe('Dac inputs that live in its own arena', () => {
  it('copies a value view handed back to insert before freeing the block it points into', () => {
    const dac = new Dac({ capacityBytes: 4096 });
    const aa = encoder.encode('aa');
    const original = new Uint8Array(600).map((_, i) => (i % 250) + 1);
    dac.insert(aa, hashKey(aa), original, { entryOffset: 1, entryBytes: 1, generation: 0 });
    expect(dac.lookup(aa, hashKey(aa))).toBe(DacHit.value);
    // A shorter rewrite taken from the cached bytes: the old block is freed before the new one is filled.
    dac.insert(aa, hashKey(aa), dac.valueView.subarray(0, 300), {
      entryOffset: 2,
      entryBytes: 1,
      generation: 0,
    });
    expect(dac.lookup(aa, hashKey(aa))).toBe(DacHit.value);
    expect(dac.valueView).toEqual(original.subarray(0, 300));
    dac.checkInvariants();
  });
});
