import { describe, expect, it } from 'vitest';
import {
  Dac,
  DacHit,
  dacEntryOverheadBytes,
  dacValueOverheadBytes,
  type DacOptions,
} from '../../../src/kn/dac.js';
import { hashKey } from '../../../src/util/hash.js';

// Writes (insert on cached keys), decay and bulk removal. Every key here has 2 bytes.
const encoder = new TextEncoder();
const shortcutBytes = dacEntryOverheadBytes + 2;
const valueBytes = (length: number): number => shortcutBytes + dacValueOverheadBytes + length;

function k(name: string): Uint8Array {
  return encoder.encode(name);
}

function make(options: DacOptions) {
  const dac = new Dac(options);
  const op = {
    dac,
    insert(name: string, length: number, entryOffset: number, fill = 7): void {
      const value = new Uint8Array(length).fill(fill);
      dac.insert(k(name), hashKey(k(name)), value, {
        entryOffset,
        entryBytes: 40 + length,
        generation: 3,
      });
      dac.checkInvariants();
    },
    lookup(name: string): number {
      const hit = dac.lookup(k(name), hashKey(k(name)));
      dac.checkInvariants();
      return hit;
    },
    lookupTimes(name: string, times: number): void {
      for (let i = 0; i < times; i++) op.lookup(name);
    },
    shortcutOf(name: string): number {
      expect(op.lookup(name)).toBe(DacHit.shortcut);
      return dac.shortcut.entryOffset;
    },
  };
  return op;
}

describe('Dac insert always refreshes the shortcut', () => {
  it('original bug 1b: stale shortcut after write-promotion then demotion', () => {
    const c = make({ capacityBytes: 2 * valueBytes(100) });
    c.insert('aa', 100, 1);
    c.insert('bb', 100, 2);
    c.insert('kk', 100, 100); // full: kk enters as a shortcut to version 1 (offset 100)
    expect(c.shortcutOf('kk')).toBe(100);
    c.dac.remove(k('aa'), hashKey(k('aa')));
    c.insert('kk', 100, 200); // the write promotes kk to a value; its shortcut must be version 2
    expect(c.lookup('kk')).toBe(DacHit.value);
    expect(c.dac.stats().promotions).toBe(1);
    c.lookup('bb'); // kk becomes the LRU value
    c.insert('cc', 100, 3); // demotes kk
    expect(c.shortcutOf('kk')).toBe(200); // the original answered 100: a stale read
  });

  it('refreshes the shortcut of a value overwritten in place, and of a shortcut that stays one', () => {
    const c = make({ capacityBytes: 4096 });
    c.insert('vv', 50, 1);
    c.insert('vv', 50, 2, 9);
    expect(c.lookup('vv')).toBe(DacHit.value);
    expect(c.dac.valueView[0]).toBe(9);
    c.insert('ss', 9000, 5);
    c.insert('ss', 9000, 6);
    expect(c.shortcutOf('ss')).toBe(6);
    const tight = make({ capacityBytes: valueBytes(50) + 20 });
    tight.insert('vv', 50, 1);
    tight.insert('vv', 50, 2);
    tight.insert('ww', 10, 3); // demotes vv
    expect(tight.shortcutOf('vv')).toBe(2);
  });
});

describe('Dac value size changes on update', () => {
  it('re-accounts a value that shrinks or grows within the budget', () => {
    const c = make({ capacityBytes: 4096 });
    c.insert('vv', 100, 1);
    c.insert('vv', 40, 2, 4);
    expect(c.dac.stats()).toMatchObject({ bytesUsed: valueBytes(40), valueBytes: 40, values: 1 });
    c.insert('vv', 1000, 3, 5);
    expect(c.dac.stats()).toMatchObject({ bytesUsed: valueBytes(1000), valueBytes: 1000 });
    expect(c.lookup('vv')).toBe(DacHit.value);
    expect(c.dac.valueView.length).toBe(1000);
    expect(c.dac.valueView[999]).toBe(5);
  });

  it('demotes a value that grows beyond what could ever fit, with the new shortcut', () => {
    const c = make({ capacityBytes: 1024 });
    c.insert('vv', 100, 1);
    c.insert('vv', 5000, 2);
    expect(c.dac.stats()).toMatchObject({
      values: 0,
      shortcuts: 1,
      demotions: 1,
      bytesUsed: shortcutBytes,
    });
    expect(c.shortcutOf('vv')).toBe(2);
  });

  it('evicts shortcuts for a grown value iff the promotion test passes, else demotes it', () => {
    // vv (value, 100 bytes) and two shortcuts fill 186 + 156 of 352; growing vv by 60 needs one victim.
    const scene = (hitsOfVictims: number) => {
      const c = make({
        capacityBytes: valueBytes(100) + 2 * shortcutBytes + 10,
        missCostInitial: 2,
      });
      c.insert('vv', 100, 1);
      c.insert('s1', 9000, 2);
      c.insert('s2', 9000, 3);
      c.lookupTimes('s1', hitsOfVictims - 1);
      c.lookupTimes('s2', 20);
      c.lookupTimes('vv', 3); // vv: 1 + 3 hits, + 1 for the write = 5
      c.insert('vv', 160, 4);
      return c;
    };
    const pays = scene(4); // 5 > (2 - 1) x 4
    expect(pays.dac.stats()).toMatchObject({
      values: 1,
      shortcuts: 1,
      evictions: 1,
      valueBytes: 160,
    });
    expect(pays.lookup('s1')).toBe(DacHit.miss);
    const costly = scene(5); // 5 > 5 is false
    expect(costly.dac.stats()).toMatchObject({
      values: 0,
      shortcuts: 3,
      evictions: 0,
      demotions: 1,
    });
    expect(costly.shortcutOf('vv')).toBe(4);
  });
});

describe('Dac LFU decay', () => {
  function oldHotKeyScene(decayEveryAccesses: number): ReturnType<typeof make> {
    // Three shortcuts fit. hh was hot long ago; aa and bb are warm now.
    const c = make({ capacityBytes: 3 * shortcutBytes, decayEveryAccesses });
    c.insert('hh', 9000, 1);
    c.insert('aa', 9000, 2);
    c.insert('bb', 9000, 3);
    c.lookupTimes('hh', 40);
    for (let i = 0; i < 30; i++) {
      c.lookup('aa');
      c.lookup('bb');
    }
    c.insert('nn', 9000, 4);
    return c;
  }

  it('halves frequencies every N accesses, so an old hot key becomes evictable', () => {
    const decaying = oldHotKeyScene(8);
    expect(decaying.dac.stats().decays).toBe(Math.floor(104 / 8));
    expect(decaying.lookup('hh')).toBe(DacHit.miss);
    expect([decaying.lookup('aa'), decaying.lookup('bb')]).toEqual([
      DacHit.shortcut,
      DacHit.shortcut,
    ]);
    // Without decay the old hot key stays and a warm key leaves instead.
    const frozen = oldHotKeyScene(1_000_000);
    expect(frozen.dac.stats().decays).toBe(0);
    expect(frozen.lookup('hh')).toBe(DacHit.shortcut);
  });

  it('halves value weights too, which carry over on demotion', () => {
    const c = make({ capacityBytes: valueBytes(100) + shortcutBytes, decayEveryAccesses: 12 });
    c.insert('vv', 100, 1);
    c.lookupTimes('vv', 10); // weight 11
    c.insert('s1', 9000, 2); // the 12th access: decay, vv 5 and s1 0
    expect(c.dac.stats().decays).toBe(1);
    c.lookupTimes('s1', 7); // s1 7
    c.insert('vv', 9000, 3); // too big now: demoted with weight 5 + 1 = 6 (undecayed it would be 12)
    expect(c.dac.stats().demotions).toBe(1);
    const long = 'n'.repeat(110); // a shortcut of 186 bytes: one of vv and s1 must go
    c.insert(long, 9000, 4);
    expect([c.lookup('vv'), c.lookup('s1'), c.lookup(long)]).toEqual([
      DacHit.miss,
      DacHit.shortcut,
      DacHit.shortcut,
    ]);
  });
});

describe('Dac removal', () => {
  it('remove drops either kind and reports whether the key was cached', () => {
    const c = make({ capacityBytes: valueBytes(10) + shortcutBytes });
    c.insert('vv', 10, 1);
    c.insert('ss', 9000, 2);
    expect(c.dac.remove(k('vv'), hashKey(k('vv')))).toBe(true);
    expect(c.dac.remove(k('ss'), hashKey(k('ss')))).toBe(true);
    expect(c.dac.remove(k('ss'), hashKey(k('ss')))).toBe(false);
    expect(c.dac.stats()).toMatchObject({ bytesUsed: 0, values: 0, shortcuts: 0, evictions: 0 });
  });

  it('removeWhere drops exactly the matching keys (a handoff of some slots)', () => {
    const c = make({ capacityBytes: 12 * valueBytes(20) + 4 * shortcutBytes });
    for (let i = 0; i < 8; i++) {
      c.insert(`a${i}`, 20, i);
      c.insert(`b${i}`, i % 2 === 0 ? 20 : 9000, 100 + i);
    }
    const before = c.dac.stats();
    expect(before).toMatchObject({ values: 12, shortcuts: 4, demotions: 0, evictions: 0 });
    const removed = c.dac.removeWhere((key) => key[0] === 'a'.charCodeAt(0));
    c.dac.checkInvariants();
    expect(removed).toBe(8);
    for (let i = 0; i < 8; i++) {
      expect(c.lookup(`a${i}`)).toBe(DacHit.miss);
      expect(c.lookup(`b${i}`)).not.toBe(DacHit.miss);
    }
    expect(c.dac.stats().bytesUsed).toBe(4 * valueBytes(20) + 4 * shortcutBytes);
  });

  it('clear empties the cache but keeps missCost and the cumulative counters', () => {
    const c = make({ capacityBytes: 4096, missCostInitial: 3 });
    c.insert('aa', 10, 1);
    c.dac.clear();
    c.dac.checkInvariants();
    expect(c.dac.stats()).toMatchObject({
      bytesUsed: 0,
      values: 0,
      shortcuts: 0,
      valueBytes: 0,
      missCost: 3,
    });
    expect(c.lookup('aa')).toBe(DacHit.miss);
    c.insert('aa', 10, 1);
    expect(c.lookup('aa')).toBe(DacHit.value);
  });

  it('honours a small entriesMax by evicting whole entries', () => {
    const c = make({ capacityBytes: 4096, entriesMax: 2 });
    c.insert('aa', 10, 1);
    c.insert('bb', 10, 2);
    c.insert('cc', 10, 3); // no shortcut to evict: the LRU value aa goes
    expect(c.dac.stats()).toMatchObject({ values: 2, evictions: 1 });
    expect(c.lookup('aa')).toBe(DacHit.miss);
  });
});
