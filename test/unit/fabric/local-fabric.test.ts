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
