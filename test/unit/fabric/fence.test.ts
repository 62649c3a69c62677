import { describe, expect, it } from 'vitest';
import { DinomoError } from '../../../src/errors/index.js';
import { LocalFabric, currentIncarnation, fenceRank } from '../../../src/fabric/index.js';

describe('fencing by incarnation', () => {
  it('fences the old incarnation, lets the restarted one write, and is idempotent', () => {
    const region = new SharedArrayBuffer(256);
    const words = new Int32Array(region);
    const fenceWord = 128;
    const old = new LocalFabric(region, fenceWord, 0);
    old.write64(0, 1n);
    expect(fenceRank(words, fenceWord / 4, 0)).toBe(1);
    // A repeated failover of incarnation 0 must not fence incarnation 1 (its restart).
    expect(fenceRank(words, fenceWord / 4, 0)).toBe(1);
    expect(currentIncarnation(words, fenceWord / 4)).toBe(1);
    expect(() => old.write64(0, 2n)).toThrow(DinomoError);
    const restarted = new LocalFabric(region, fenceWord, 1);
    restarted.write64(8, 3n);
    expect(old.read64(0)).toBe(1n);
    expect(restarted.read64(8)).toBe(3n);
    // The word is left without its busy bit after every write.
    expect(words[fenceWord / 4]).toBe(1);
  });
});
