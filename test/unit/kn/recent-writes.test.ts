import { describe, expect, it } from 'vitest';
import { EntryOp, writeEntry } from '../../../src/dpm/log-entry.js';
import { RecentWrites, isTombstone, recordedValue } from '../../../src/kn/recent-writes.js';

function mirrorWith(entries: Array<[number, string, string | null]>): {
  mirror: Uint8Array;
  at: number[];
} {
  const mirror = new Uint8Array(64 * 1024);
  const view = new DataView(mirror.buffer);
  const at: number[] = [];
  let offset = 64;
  for (const [op, key, value] of entries) {
    at.push(offset);
    offset += writeEntry(
      mirror,
      view,
      offset,
      op as 1 | 2,
      Buffer.from(key),
      value === null ? null : Buffer.from(value),
      1,
      1,
      at.length,
    );
  }
  return { mirror, at };
}

describe('RecentWrites', () => {
  it('keeps the newest write per key (the original returned the oldest: bug 4)', () => {
    const { mirror, at } = mirrorWith([
      [EntryOp.put, 'k', 'old'],
      [EntryOp.put, 'k', 'new'],
    ]);
    const r = new RecentWrites();
    r.record(5, Buffer.from('k'), 100, mirror, at[0] as number);
    r.record(5, Buffer.from('k'), 200, mirror, at[1] as number);
    expect(r.size).toBe(1);
    const node = r.find(5, Buffer.from('k'));
    expect(node && Buffer.from(recordedValue(node)).toString()).toBe('new');
  });

  it('separates keys whose hashes collide, and reports tombstones', () => {
    const { mirror, at } = mirrorWith([
      [EntryOp.put, 'a', '1'],
      [EntryOp.delete, 'b', null],
    ]);
    const r = new RecentWrites();
    r.record(9, Buffer.from('a'), 1, mirror, at[0] as number);
    r.record(9, Buffer.from('b'), 2, mirror, at[1] as number);
    const a = r.find(9, Buffer.from('a'));
    const b = r.find(9, Buffer.from('b'));
    expect(a && isTombstone(a)).toBe(false);
    expect(b && isTombstone(b)).toBe(true);
    expect(r.find(9, Buffer.from('c'))).toBeNull();
  });

  it('drops records below a merged LSN and by key predicate', () => {
    const { mirror, at } = mirrorWith([
      [EntryOp.put, 'a', '1'],
      [EntryOp.put, 'b', '2'],
      [EntryOp.put, 'c', '3'],
    ]);
    const r = new RecentWrites();
    r.record(1, Buffer.from('a'), 10, mirror, at[0] as number);
    r.record(1, Buffer.from('b'), 20, mirror, at[1] as number);
    r.record(2, Buffer.from('c'), 30, mirror, at[2] as number);
    expect(r.dropBelow(20)).toBe(1);
    expect(r.find(1, Buffer.from('a'))).toBeNull();
    expect(r.find(1, Buffer.from('b'))).not.toBeNull();
    expect(r.dropWhere((key) => Buffer.from(key).toString() === 'c')).toBe(1);
    expect(r.size).toBe(1);
  });
});
