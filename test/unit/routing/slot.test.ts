import { describe, expect, it } from 'vitest';
import { evenSlotMap, slotOfKey } from '../../../src/routing/index.js';

describe('slots', () => {
  it('match Redis Cluster (CRC16 XMODEM mod 16384, hash tags)', () => {
    // Reference values from Redis: CLUSTER KEYSLOT foo = 12182, bar = 5061, {user1000}.following = 3443.
    expect(slotOfKey(Buffer.from('foo'))).toBe(12182);
    expect(slotOfKey(Buffer.from('bar'))).toBe(5061);
    expect(slotOfKey(Buffer.from('{user1000}.following'))).toBe(
      slotOfKey(Buffer.from('{user1000}.followers')),
    );
    expect(slotOfKey(Buffer.from('{user1000}.following'))).toBe(3443);
    expect(slotOfKey(new Uint8Array(Buffer.from('foo')))).toBe(12182);
  });

  it('spreads slots evenly over ranks', () => {
    const map = evenSlotMap(3);
    const counts = [0, 0, 0];
    for (const rank of map) counts[rank] = (counts[rank] as number) + 1;
    expect(counts.reduce((a, b) => a + b)).toBe(16384);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });
});
