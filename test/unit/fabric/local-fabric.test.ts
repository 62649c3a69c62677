import { describe, expect, it } from 'vitest';
import { DinomoError } from '../../../src/errors/index.js';
import { LocalFabric } from '../../../src/fabric/index.js';

describe('LocalFabric', () => {
  it('reads, writes and counts one RT per operation', () => {
    const region = new SharedArrayBuffer(4096);
    const f = new LocalFabric(region);
    f.write(100, Buffer.from('hello'));
    const out = new Uint8Array(5);
    f.read(100, 5, out);
    expect(Buffer.from(out).toString()).toBe('hello');
    f.write64(8, 41n);
    expect(f.faa64(8, 1n)).toBe(41n);
    expect(f.cas64(8, 42n, 7n)).toBe(42n);
    expect(f.read64(8)).toBe(7n);
    expect(f.counters).toMatchObject({
      rts: 6,
      reads: 2,
      writes: 2,
      atomics: 2,
      bytesRead: 13,
      bytesWritten: 13,
    });
  });

  it('refuses out-of-range and unaligned accesses with CORRUPT and changes nothing', () => {
    const region = new SharedArrayBuffer(64);
    const f = new LocalFabric(region);
    expect(() => f.write(60, new Uint8Array(8))).toThrow(DinomoError);
    expect(() => f.read(-1, 4, new Uint8Array(4))).toThrow(/outside/);
    expect(() => f.read64(4)).toThrow(/unaligned/);
    expect(new Uint8Array(region).every((b) => b === 0)).toBe(true);
  });

  it('refuses writes of a fenced caller (FENCED) and leaves the region unchanged', () => {
    const region = new SharedArrayBuffer(256);
    const fenceWord = 128;
    const f = new LocalFabric(region, fenceWord);
    f.write(0, Buffer.from('ok'));
    new Int32Array(region)[fenceWord / 4] = 1;
    const codes: string[] = [];
    for (const op of [
      () => f.write(8, Buffer.from('no')),
      () => f.write64(16, 1n),
      () => f.cas64(16, 0n, 1n),
      () => f.faa64(16, 1n),
    ]) {
      try {
        op();
      } catch (err) {
        codes.push((err as DinomoError).code);
      }
    }
    expect(codes).toEqual(['FENCED', 'FENCED', 'FENCED', 'FENCED']);
    expect(
      Buffer.from(new Uint8Array(region, 0, 24))
        .toString('latin1')
        .replace(/\0/g, ''),
    ).toBe('ok');
    const out = new Uint8Array(2);
    f.read(0, 2, out); // Reads stay allowed.
    expect(Buffer.from(out).toString()).toBe('ok');
  });
});

describe('LocalFabric.persist with persistRange (durability sync)', () => {
  function spied(regionBytes = 4096, fenceWord = -1) {
    const region = new SharedArrayBuffer(regionBytes);
    const flushed: Array<[number, number]> = [];
    const fabric = new LocalFabric(region, fenceWord, 0, {
      persistRange: (offset, length) => flushed.push([offset, length]),
    });
    return { region, fabric, flushed };
  }

  it('flushes exactly the range written since the last persist, once per persist', () => {
    const { fabric, flushed } = spied();
    // A group commit: the batch, then the block's commit word before it.
    fabric.write(1000, new Uint8Array(100));
    fabric.write64(8, 1n);
    fabric.persist();
    expect(flushed).toEqual([[8, 1092]]);
    // The range starts afresh after a persist.
    fabric.write(2048, new Uint8Array(10), 2, 5);
    fabric.persist();
    expect(flushed).toEqual([
      [8, 1092],
      [2048, 5],
    ]);
    fabric.faa64(3000, 1n);
    fabric.cas64(16, 0n, 9n);
    fabric.persist();
    expect(flushed[2]).toEqual([16, 2992]);
    expect(fabric.counters).toMatchObject({ persists: 3, flushes: 3 });
  });

  it('flushes nothing when nothing was written, or only read, or a compare-and-swap failed', () => {
    const { fabric, flushed } = spied();
    fabric.persist();
    fabric.read(0, 64, new Uint8Array(64));
    fabric.read64(8);
    expect(fabric.cas64(24, 5n, 6n)).toBe(0n);
    fabric.write(100, new Uint8Array(0));
    fabric.persist();
    expect(flushed).toEqual([]);
    expect(fabric.counters).toMatchObject({ persists: 2, flushes: 0 });
  });

  it('flushes nothing for writes a fence refused', () => {
    const fenceWord = 128;
    const { region, fabric, flushed } = spied(256, fenceWord);
    new Int32Array(region)[fenceWord / 4] = 1;
    expect(() => fabric.write(8, new Uint8Array(4))).toThrow(DinomoError);
    expect(() => fabric.write64(16, 1n)).toThrow(DinomoError);
    expect(() => fabric.faa64(16, 1n)).toThrow(DinomoError);
    fabric.persist();
    expect(flushed).toEqual([]);
  });

  it('keeps the range when the flush fails, so the next persist covers it', () => {
    const region = new SharedArrayBuffer(4096);
    const flushed: Array<[number, number]> = [];
    let fail = true;
    const fabric = new LocalFabric(region, -1, 0, {
      persistRange: (offset, length) => {
        if (fail) throw new DinomoError('UNAVAILABLE', 'disk gone');
        flushed.push([offset, length]);
      },
    });
    fabric.write(64, new Uint8Array(8));
    expect(() => fabric.persist()).toThrow(/disk gone/);
    fail = false;
    fabric.write(512, new Uint8Array(8));
    fabric.persist();
    expect(flushed).toEqual([[64, 456]]);
    expect(fabric.counters).toMatchObject({ persists: 2, flushes: 1 });
  });

  it('only counts persists without persistRange (plain memory, or durability async)', () => {
    const fabric = new LocalFabric(new SharedArrayBuffer(4096));
    fabric.write(0, new Uint8Array(8));
    fabric.persist();
    expect(fabric.counters).toMatchObject({ persists: 1, flushes: 0 });
  });
});
