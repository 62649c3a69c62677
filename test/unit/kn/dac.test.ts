import { describe, expect, it } from 'vitest';
import {
  Dac,
  DacHit,
  dacEntryOverheadBytes,
  dacValueOverheadBytes,
  readDacStats,
  type DacOptions,
  type DacShortcut,
} from '../../../src/kn/dac.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { hashKey } from '../../../src/util/hash.js';

const encoder = new TextEncoder();
const O = dacEntryOverheadBytes;
const V = dacValueOverheadBytes;
/** Charges for 2-byte keys, which every test here uses. */
const shortcutBytes = O + 2;
const valueBytes = (length: number): number => O + 2 + V + length;

function k(name: string): Uint8Array {
  return encoder.encode(name);
}

function val(length: number, fill = 7): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

function sc(entryOffset: number): DacShortcut {
  return { entryOffset, entryBytes: 64, generation: entryOffset % 1000 };
}

/** A Dac with helpers that hash for the caller and check every invariant after each call. */
class Harness {
  readonly dac: Dac;
  constructor(options: DacOptions) {
    this.dac = new Dac(options);
  }
  insert(name: string, length: number, offset: number, fill = 7): void {
    this.dac.insert(k(name), hashKey(k(name)), val(length, fill), sc(offset));
    this.dac.checkInvariants();
  }
  lookup(name: string): number {
    const hit = this.dac.lookup(k(name), hashKey(k(name)));
    this.dac.checkInvariants();
    return hit;
  }
  /** A shortcut hit followed by its read, as the KN thread does it. */
  hitAndRead(name: string, length: number): number {
    const hit = this.lookup(name);
    if (hit === DacHit.shortcut) this.dac.afterShortcutRead(k(name), hashKey(k(name)), val(length));
    this.dac.checkInvariants();
    return hit;
  }
  lookupTimes(name: string, times: number): void {
    for (let i = 0; i < times; i++) this.lookup(name);
  }
  shortcutOf(name: string): number {
    expect(this.lookup(name)).toBe(DacHit.shortcut);
    return this.dac.shortcut.entryOffset;
  }
  kinds(...names: string[]): number[] {
    return names.map((name) => this.lookup(name));
  }
}

describe('Dac options and arena', () => {
  it('rejects invalid options with INVALID_OPTION', () => {
    const bad: DacOptions[] = [
      { capacityBytes: -1 },
      { capacityBytes: 1.5e3 + 0.5 },
      { capacityBytes: 4096, missCostInitial: -1 },
      { capacityBytes: 4096, missCostSmoothing: 0 },
      { capacityBytes: 4096, missCostSmoothing: 1.5 },
      { capacityBytes: 4096, decayEveryAccesses: 0 },
      { capacityBytes: 4096, entriesMax: 0 },
    ];
    for (const options of bad) {
      let caught: unknown;
      try {
        new Dac(options);
      } catch (err) {
        caught = err;
      }
      expect(isDinomoError(caught) && caught.code === 'INVALID_OPTION').toBe(true);
    }
    const small = new SharedArrayBuffer(Dac.arenaBytesFor({ capacityBytes: 4096 }) - 8);
    expect(() => new Dac({ capacityBytes: 4096 }, small)).toThrow(/INVALID_OPTION/);
  });

  it('bounds the arena by 2 x capacity + 20 x entriesMax + 9 KiB and works in a given arena', () => {
    for (const capacityBytes of [128, 4096, 1 << 20, 64 << 20]) {
      const entriesMax = Math.floor(capacityBytes / O);
      const bytes = Dac.arenaBytesFor({ capacityBytes });
      expect(bytes).toBeLessThanOrEqual(2 * capacityBytes + 20 * entriesMax + 9 * 1024);
      expect(bytes).toBeGreaterThan(2 * capacityBytes);
    }
    const arena = new SharedArrayBuffer(Dac.arenaBytesFor({ capacityBytes: 4096 }));
    const dac = new Dac({ capacityBytes: 4096 }, arena);
    dac.insert(k('aa'), hashKey(k('aa')), val(10), sc(1));
    expect(dac.arena).toBe(arena);
    // The monitor reads the counters straight from the arena.
    expect(readDacStats(arena)).toEqual(dac.stats());
    expect(readDacStats(new SharedArrayBuffer(4096))).toBeUndefined();
  });

  it('smooths missCost as an EWMA starting from the initial value', () => {
    const dac = new Dac({ capacityBytes: 4096 });
    expect(dac.missCost).toBe(2);
    dac.recordMissCost(5);
    expect(dac.missCost).toBeCloseTo(2.3, 12);
    dac.recordMissCost(5);
    expect(dac.missCost).toBeCloseTo(2.57, 12);
    const sharp = new Dac({ capacityBytes: 4096, missCostInitial: 4, missCostSmoothing: 1 });
    sharp.recordMissCost(3);
    expect(sharp.missCost).toBe(3);
    expect(() => dac.recordMissCost(Number.NaN)).toThrow(/assertion/);
  });
});

describe('Dac lookups', () => {
  it('returns the cached value as a view, and the shortcut fields of a shortcut hit', () => {
    const h = new Harness({ capacityBytes: 4096 });
    const value = encoder.encode('hello world');
    h.dac.insert(k('aa'), hashKey(k('aa')), value, sc(10));
    expect(h.lookup('aa')).toBe(DacHit.value);
    expect(Array.from(h.dac.valueView)).toEqual(Array.from(value));
    const { valueBytes: bytes, valueOffset, valueLength } = h.dac;
    expect(Array.from(bytes.subarray(valueOffset, valueOffset + valueLength))).toEqual(
      Array.from(value),
    );
    expect(h.lookup('zz')).toBe(DacHit.miss);
    const big = 2 ** 40 + 12345;
    h.dac.insert(k('bb'), hashKey(k('bb')), val(10_000), {
      entryOffset: big,
      entryBytes: 10_040,
      generation: 0xfffffff0,
    });
    expect(h.lookup('bb')).toBe(DacHit.shortcut);
    expect(h.dac.shortcut).toEqual({
      entryOffset: big,
      entryBytes: 10_040,
      generation: 0xfffffff0,
    });
    const stats = h.dac.stats();
    expect([stats.lookups, stats.valueHits, stats.shortcutHits]).toEqual([3, 1, 1]);
  });
});

describe('Dac with shortcutsOnly (clover mode)', () => {
  it('caches shortcuts and never a value, even with room and after many hits', () => {
    const h = new Harness({ capacityBytes: 64 * 1024, shortcutsOnly: true });
    h.dac.insert(k('aa'), hashKey(k('aa')), val(10), sc(10));
    expect(h.lookup('aa')).toBe(DacHit.shortcut);
    for (let i = 0; i < 100; i++) {
      expect(h.lookup('aa')).toBe(DacHit.shortcut);
      h.dac.afterShortcutRead(k('aa'), hashKey(k('aa')), val(10));
    }
    // A write refreshes the shortcut and still caches no value.
    h.dac.insert(k('aa'), hashKey(k('aa')), val(10), sc(20));
    expect(h.lookup('aa')).toBe(DacHit.shortcut);
    expect(h.dac.shortcut.entryOffset).toBe(20);
    expect(h.dac.stats()).toMatchObject({ values: 0, shortcuts: 1 });
  });
});

describe('Dac fill and pressure (original insert rules, real sizes)', () => {
  const capacityBytes = 3 * valueBytes(100);

  it('fills with values first, charging key + value + overheads exactly', () => {
    const h = new Harness({ capacityBytes });
    h.insert('k1', 100, 1);
    h.insert('k2', 100, 2);
    h.insert('k3', 100, 3);
    expect(h.dac.stats()).toMatchObject({
      values: 3,
      shortcuts: 0,
      bytesUsed: capacityBytes,
      valueBytes: 300,
    });
    expect(h.kinds('k1', 'k2', 'k3')).toEqual([DacHit.value, DacHit.value, DacHit.value]);
  });

  it('when full, a new key enters as a shortcut after demoting the LRU value', () => {
    const h = new Harness({ capacityBytes });
    h.insert('k1', 100, 1);
    h.insert('k2', 100, 2);
    h.insert('k3', 100, 3);
    h.lookup('k1'); // k2 is now the least recently used value.
    h.insert('k4', 100, 4);
    expect(h.dac.stats()).toMatchObject({ values: 2, shortcuts: 2, demotions: 1, evictions: 0 });
    expect(h.dac.stats().bytesUsed).toBe(2 * valueBytes(100) + 2 * shortcutBytes);
    expect(h.kinds('k1', 'k2', 'k3', 'k4')).toEqual([
      DacHit.value,
      DacHit.shortcut,
      DacHit.value,
      DacHit.shortcut,
    ]);
    expect(h.shortcutOf('k2')).toBe(2);
  });

  it('demotes as many LRU values as it takes when they are small', () => {
    const h = new Harness({ capacityBytes: 4 * valueBytes(4) });
    for (const name of ['k1', 'k2', 'k3', 'k4']) h.insert(name, 4, 1);
    h.insert('k5', 4, 5);
    // Each demotion frees only 12 bytes; a shortcut needs 78, and then it is all shortcuts, so one goes.
    expect(h.dac.stats()).toMatchObject({ values: 0, demotions: 4, evictions: 1, shortcuts: 4 });
  });

  it('evicts shortcuts in LFU order, the oldest first among equal frequencies', () => {
    // Values of 300 bytes can never fit, so everything is a shortcut.
    const h = new Harness({ capacityBytes: 4 * shortcutBytes });
    for (const name of ['sa', 'sb', 'sc', 'sd']) h.insert(name, 300, 1);
    h.lookupTimes('sa', 3); // 4
    h.lookupTimes('sb', 1); // 2
    h.lookupTimes('sc', 2); // 3, sd stays at 1
    h.insert('se', 300, 5);
    expect(h.lookup('sd')).toBe(DacHit.miss);
    h.lookupTimes('se', 2); // se 3: now sb (2) is the least frequent
    h.insert('sf', 300, 6);
    expect(h.kinds('sb', 'sf')).toEqual([DacHit.miss, DacHit.shortcut]);
    expect(h.kinds('sa', 'sc', 'se')).toEqual([DacHit.shortcut, DacHit.shortcut, DacHit.shortcut]);
    // Equal frequencies: the one that entered (or was touched) first leaves first.
    const tie = new Harness({ capacityBytes: 2 * shortcutBytes });
    tie.insert('t1', 300, 1);
    tie.insert('t2', 300, 2);
    tie.insert('t3', 300, 3);
    expect(tie.kinds('t1', 't2', 't3')).toEqual([DacHit.miss, DacHit.shortcut, DacHit.shortcut]);
    expect(tie.dac.stats().evictions).toBe(1);
  });

  it('does not cache a key that cannot fit even as a shortcut', () => {
    const h = new Harness({ capacityBytes: 128 });
    const key = new Uint8Array(100).fill(1);
    h.dac.insert(key, hashKey(key), val(1), sc(1));
    expect(h.dac.lookup(key, hashKey(key))).toBe(DacHit.miss);
    expect(h.dac.stats().bytesUsed).toBe(0);
  });
});

describe('Dac promotion', () => {
  it('promotes a shortcut hit to a value when it fits', () => {
    const h = new Harness({ capacityBytes: 2 * valueBytes(100) });
    h.insert('k1', 100, 1);
    h.insert('k2', 100, 2);
    h.insert('k3', 100, 3); // demotes k1
    h.dac.remove(k('k2'), hashKey(k('k2')));
    expect(h.hitAndRead('k1', 100)).toBe(DacHit.shortcut);
    expect(h.dac.stats()).toMatchObject({ promotions: 1, values: 1, shortcuts: 1, evictions: 0 });
    expect(h.dac.stats().bytesUsed).toBe(valueBytes(100) + shortcutBytes);
    expect(h.lookup('k1')).toBe(DacHit.value);
  });

  /**
   * P, V and W are shortcuts (their first values were too big). P's new value needs 58 more bytes
   * and there are 10 free, so exactly one victim (V, the least frequent other shortcut) must go.
   */
  function costScene(missCostInitial: number): Harness {
    // Capacity 244: three shortcuts use 234; P's value of 50 bytes needs 58.
    const h = new Harness({ capacityBytes: 3 * shortcutBytes + 10, missCostInitial });
    h.insert('pp', 5000, 1);
    h.insert('vv', 5000, 2);
    h.insert('ww', 5000, 3);
    h.lookupTimes('vv', 1); // freq 2
    h.lookupTimes('ww', 5); // freq 6
    h.lookupTimes('pp', 2); // freq 3
    return h;
  }

  it('promotes over evicted shortcuts iff freq > (missCost - 1) x their hits (exact threshold)', () => {
    // missCost 3: threshold 2 x 2 = 4. The original's missCost x H would need freq > 6.
    const h = costScene(3);
    expect(h.hitAndRead('pp', 50)).toBe(DacHit.shortcut); // freq 4: 4 > 4 is false
    expect(h.dac.stats()).toMatchObject({ promotions: 0, evictions: 0, shortcuts: 3 });
    expect(h.hitAndRead('pp', 50)).toBe(DacHit.shortcut); // freq 5 > 4
    expect(h.dac.stats()).toMatchObject({ promotions: 1, evictions: 1, values: 1, shortcuts: 1 });
    expect(h.kinds('pp', 'vv', 'ww')).toEqual([DacHit.value, DacHit.miss, DacHit.shortcut]);
    // missCost 2.5: threshold 1.5 x 2 = 3, so freq 3 stays and freq 4 promotes.
    const real = costScene(2.5);
    real.dac.afterShortcutRead(k('pp'), hashKey(k('pp')), val(50));
    expect(real.dac.stats().promotions).toBe(0);
    real.hitAndRead('pp', 50);
    expect(real.dac.stats()).toMatchObject({ promotions: 1, evictions: 1 });
  });

  it('stays a shortcut when the other shortcuts cannot free enough bytes', () => {
    // One value and one shortcut: promoting the shortcut would need the value's room, which never happens.
    const h = new Harness({ capacityBytes: valueBytes(100) + shortcutBytes, missCostInitial: 0 });
    h.insert('xx', 100, 1);
    h.insert('pp', 5000, 2);
    for (let i = 0; i < 5; i++) expect(h.hitAndRead('pp', 100)).toBe(DacHit.shortcut);
    expect(h.dac.stats()).toMatchObject({ promotions: 0, evictions: 0, values: 1, shortcuts: 1 });
  });

  for (const missCostInitial of [0, 1]) {
    it(`original bug 18: never evicts the key being promoted (missCost ${missCostInitial})`, () => {
      // P is the least frequent shortcut of all: the original counted it among its own victims.
      const h = new Harness({ capacityBytes: 3 * shortcutBytes + 10, missCostInitial });
      h.insert('pp', 5000, 1);
      h.insert('vv', 5000, 2);
      h.insert('ww', 5000, 3);
      h.lookupTimes('vv', 5);
      h.lookupTimes('ww', 6);
      expect(h.hitAndRead('pp', 50)).toBe(DacHit.shortcut);
      expect(h.dac.stats()).toMatchObject({ promotions: 1, evictions: 1, values: 1 });
      expect(h.lookup('pp')).toBe(DacHit.value);
      expect(Array.from(h.dac.valueView)).toEqual(Array.from(val(50)));
      expect(h.kinds('vv', 'ww')).toEqual([DacHit.miss, DacHit.shortcut]);
    });
  }

  it('ignores a read whose shortcut was replaced by a write in between', () => {
    const h = new Harness({ capacityBytes: 4096 });
    h.insert('pp', 5000, 1);
    expect(h.lookup('pp')).toBe(DacHit.shortcut);
    const read = { ...h.dac.shortcut };
    h.insert('pp', 6000, 2); // a newer version, still too big to be a value
    h.dac.afterShortcutRead(k('pp'), hashKey(k('pp')), val(10), read);
    expect(h.dac.stats().promotions).toBe(0);
    expect(h.shortcutOf('pp')).toBe(2);
  });
});
