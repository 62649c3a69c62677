import { describe, expect, it } from 'vitest';
import {
  DacAllocator,
  allocatorControlWords,
  blockBytesFor,
} from '../../../src/kn/dac-allocator.js';
import { SeededRandom } from '../../../src/util/random.js';

function makeAllocator(heapBytes: number): DacAllocator {
  const allocator = new DacAllocator(
    new Uint32Array(allocatorControlWords),
    new Uint32Array(heapBytes / 4),
  );
  allocator.reset();
  return allocator;
}

describe('DAC allocator (TLSF)', () => {
  it('rounds blocks to 8 bytes with an 8-byte header and a 16-byte minimum', () => {
    expect(blockBytesFor(0)).toBe(16);
    expect(blockBytesFor(1)).toBe(16);
    expect(blockBytesFor(8)).toBe(16);
    expect(blockBytesFor(9)).toBe(24);
    expect(blockBytesFor(1000)).toBe(1008);
  });

  it('returns 8-aligned, disjoint payloads and reuses freed space', () => {
    const allocator = makeAllocator(4096);
    const a = allocator.alloc(100);
    const b = allocator.alloc(200);
    expect(a % 8).toBe(0);
    expect(b % 8).toBe(0);
    expect(b).toBeGreaterThanOrEqual(a + 100);
    expect(allocator.usedBytes).toBe(blockBytesFor(100) + blockBytesFor(200));
    allocator.free(a);
    expect(allocator.alloc(100)).toBe(a);
    expect(allocator.check()).toBe(2);
  });

  it('coalesces neighbours so the whole heap is one block again', () => {
    const heapBytes = 8192;
    const allocator = makeAllocator(heapBytes);
    const blocks = [
      allocator.alloc(500),
      allocator.alloc(700),
      allocator.alloc(300),
      allocator.alloc(64),
    ];
    expect(allocator.alloc(heapBytes)).toBe(0);
    // Free out of order: middle, ends, then the rest.
    for (const i of [1, 3, 0, 2]) allocator.free(blocks[i] as number);
    expect(allocator.usedBytes).toBe(0);
    expect(allocator.check()).toBe(0);
    // The largest possible payload fits only if everything merged back into one block.
    expect(allocator.alloc(heapBytes - 16)).toBe(16);
  });

  it('fails with 0 when no block is large enough, and rejects double frees', () => {
    const allocator = makeAllocator(1024);
    const a = allocator.alloc(900);
    expect(a).not.toBe(0);
    expect(allocator.alloc(200)).toBe(0);
    allocator.free(a);
    expect(() => allocator.free(a)).toThrow(/double free/);
  });

  it('keeps its structure through 50k random allocations and frees, never overlapping', () => {
    const heapBytes = 1 << 20;
    const allocator = makeAllocator(heapBytes);
    const random = new SeededRandom(7);
    const live: number[] = [];
    const sizes = new Map<number, number>();
    // Which allocation owns each 8-byte unit of the heap (0 = none): overlaps show up at once.
    const owner = new Uint32Array(heapBytes / 8);
    const mark = (payload: number, bytes: number, id: number): void => {
      for (let unit = payload / 8; unit < (payload + Math.max(bytes, 1)) / 8; unit++) {
        if (id !== 0 && owner[unit] !== 0) throw new Error(`overlap at ${unit * 8}`);
        owner[unit] = id;
      }
    };
    let failures = 0;
    for (let step = 0; step < 50_000; step++) {
      if (live.length > 0 && random.next() < 0.45) {
        const i = random.int(live.length);
        const payload = live[i] as number;
        live[i] = live[live.length - 1] as number;
        live.pop();
        mark(payload, sizes.get(payload) as number, 0);
        allocator.free(payload);
        sizes.delete(payload);
        continue;
      }
      const bytes = random.next() < 0.9 ? random.int(200) : random.int(20_000);
      const payload = allocator.alloc(bytes);
      if (payload === 0) {
        failures++;
        continue;
      }
      expect(payload + bytes).toBeLessThanOrEqual(heapBytes);
      mark(payload, bytes, step + 1);
      live.push(payload);
      sizes.set(payload, bytes);
      if (step % 5000 === 0) expect(allocator.check()).toBe(live.length);
    }
    expect(allocator.check()).toBe(live.length);
    // The heap filled up at times (the test must exercise failures), but not most of the time.
    expect(failures).toBeGreaterThan(0);
    expect(failures).toBeLessThan(25_000);
  });
});
