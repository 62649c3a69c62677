import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Dac,
  DacHit,
  dacEntryOverheadBytes as O,
  dacValueOverheadBytes as V,
  type DacShortcut,
} from '../../../src/kn/dac.js';
import { hashKey } from '../../../src/util/hash.js';

/**
 * A plain-JS reference model of the DAC rules (the original algorithm with the fixes), written for
 * clarity, not speed: a Map of entries, an array for the LRU order, and a sort for the LFU order.
 */
interface Entry {
  key: string;
  keyBytes: number;
  value: Uint8Array | null;
  shortcut: DacShortcut;
  freq: number;
  stamp: number;
}

class Model {
  readonly entries = new Map<string, Entry>();
  /** Values, most recent first. */
  lru: string[] = [];
  bytes = 0;
  clock = 0;
  accesses = 0;
  promotions = 0;
  demotions = 0;
  evictions = 0;
  decays = 0;

  constructor(
    readonly capacity: number,
    public missCost: number,
    readonly smoothing: number,
    readonly decayEvery: number,
  ) {}

  lookup(key: string): { hit: number; value?: Uint8Array; shortcut?: DacShortcut } {
    const e = this.entries.get(key);
    let result: { hit: number; value?: Uint8Array; shortcut?: DacShortcut } = { hit: DacHit.miss };
    if (e?.value) {
      this.touchLru(key);
      e.freq++;
      result = { hit: DacHit.value, value: e.value };
    } else if (e) {
      e.freq++;
      e.stamp = ++this.clock;
      result = { hit: DacHit.shortcut, shortcut: { ...e.shortcut } };
    }
    this.access();
    return result;
  }

  afterRead(key: string, value: Uint8Array): void {
    const e = this.entries.get(key);
    if (e && !e.value) this.tryPromote(e, value);
  }

  insert(key: string, keyBytes: number, value: Uint8Array, shortcut: DacShortcut): void {
    const e = this.entries.get(key);
    if (!e) this.insertNew(key, keyBytes, value, shortcut);
    else if (e.value) {
      e.shortcut = { ...shortcut };
      this.updateValue(e, value);
    } else {
      e.shortcut = { ...shortcut };
      e.freq++;
      e.stamp = ++this.clock;
      this.tryPromote(e, value);
    }
    this.access();
  }

  remove(key: string): boolean {
    const e = this.entries.get(key);
    if (!e) return false;
    this.drop(e);
    return true;
  }

  recordMissCost(rts: number): void {
    this.missCost = this.missCost + this.smoothing * (rts - this.missCost);
  }

  get valueBytes(): number {
    return this.lru.reduce((sum, key) => sum + (this.entries.get(key)?.value?.length ?? 0), 0);
  }

  drop(e: Entry): void {
    if (e.value) {
      this.lru = this.lru.filter((k) => k !== e.key);
      this.bytes -= V + e.value.length;
    }
    this.bytes -= O + e.keyBytes;
    this.entries.delete(e.key);
  }

  private insertNew(key: string, keyBytes: number, value: Uint8Array, shortcut: DacShortcut): void {
    if (O + keyBytes > this.capacity) return;
    const asValue = this.bytes + O + keyBytes + V + value.length <= this.capacity;
    if (!asValue) this.makeRoom(O + keyBytes);
    const e: Entry = { key, keyBytes, value: null, shortcut: { ...shortcut }, freq: 1, stamp: 0 };
    this.entries.set(key, e);
    this.bytes += O + keyBytes;
    if (asValue) this.setValue(e, value);
    else e.stamp = ++this.clock;
  }

  private updateValue(e: Entry, value: Uint8Array): void {
    this.touchLru(e.key);
    e.freq++;
    const old = (e.value as Uint8Array).length;
    if (value.length === old) {
      e.value = value.slice();
    } else if (O + e.keyBytes + V + value.length > this.capacity) {
      this.demote(e);
    } else {
      const over = this.bytes + value.length - old - this.capacity;
      if (over > 0 && !this.evictFor(e, over)) {
        this.demote(e);
      } else {
        this.bytes += value.length - old;
        e.value = value.slice();
      }
    }
  }

  private tryPromote(e: Entry, value: Uint8Array): void {
    if (O + e.keyBytes + V + value.length > this.capacity) return;
    const over = this.bytes + V + value.length - this.capacity;
    if (over > 0 && !this.evictFor(e, over)) return;
    this.setValue(e, value);
    this.promotions++;
  }

  /** The least frequent other shortcuts that free `over` bytes go iff freq > (missCost - 1) x their hits. */
  private evictFor(e: Entry, over: number): boolean {
    const victims: Entry[] = [];
    let freed = 0;
    let hits = 0;
    for (const v of this.lfuOrder().filter((x) => x !== e)) {
      if (freed >= over) break;
      victims.push(v);
      freed += O + v.keyBytes;
      hits += v.freq;
    }
    if (freed < over || !(e.freq > (this.missCost - 1) * hits)) return false;
    for (const v of victims) this.evict(v);
    return true;
  }

  private makeRoom(bytes: number): void {
    while (this.bytes + bytes > this.capacity) {
      const tail = this.lru[this.lru.length - 1];
      if (tail !== undefined) this.demote(this.entries.get(tail) as Entry);
      else this.evict(this.lfuOrder()[0] as Entry);
    }
  }

  private setValue(e: Entry, value: Uint8Array): void {
    e.value = value.slice();
    this.lru.unshift(e.key);
    this.bytes += V + value.length;
  }

  private demote(e: Entry): void {
    this.lru = this.lru.filter((k) => k !== e.key);
    this.bytes -= V + (e.value as Uint8Array).length;
    e.value = null;
    e.stamp = ++this.clock;
    this.demotions++;
  }

  private evict(e: Entry): void {
    this.drop(e);
    this.evictions++;
  }

  private lfuOrder(): Entry[] {
    return [...this.entries.values()]
      .filter((e) => e.value === null)
      .sort((a, b) => a.freq - b.freq || a.stamp - b.stamp);
  }

  private touchLru(key: string): void {
    this.lru = [key, ...this.lru.filter((k) => k !== key)];
  }

  private access(): void {
    if (++this.accesses < this.decayEvery) return;
    this.accesses = 0;
    for (const e of this.entries.values()) e.freq = Math.floor(e.freq / 2);
    this.decays++;
  }
}

const encoder = new TextEncoder();
const keyPool = Array.from({ length: 24 }, (_, i) => `${i}:${'x'.repeat((i * 7) % 23)}`);

type Command =
  | { t: 'insert'; key: number; length: number; offset: number }
  | { t: 'read'; key: number; length: number }
  | { t: 'remove'; key: number }
  | { t: 'miss'; rts: number }
  | { t: 'removeWhere'; mod: number };

const valueLength = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 1, arbitrary: fc.integer({ min: 5000, max: 9000 }) },
);
const keyIndex = fc.integer({ min: 0, max: keyPool.length - 1 });
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('insert' as const),
      key: keyIndex,
      length: valueLength,
      offset: fc.integer({ min: 0, max: 2 ** 45 }),
    }),
  },
  {
    weight: 10,
    arbitrary: fc.record({ t: fc.constant('read' as const), key: keyIndex, length: valueLength }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), key: keyIndex }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('miss' as const), rts: fc.integer({ min: 0, max: 8 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('removeWhere' as const),
      mod: fc.integer({ min: 0, max: 2 }),
    }),
  },
);
const setup = fc.record({
  capacityBytes: fc.integer({ min: 128, max: 4000 }),
  missCostInitial: fc.constantFrom(0, 1, 1.5, 2, 3, 5),
  missCostSmoothing: fc.constantFrom(0.1, 0.5, 1),
  decayEveryAccesses: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(1_000_000)),
});

function bytesOf(length: number, seed: number): Uint8Array {
  const value = new Uint8Array(length);
  for (let i = 0; i < length; i++) value[i] = (seed + i * 31) & 0xff;
  return value;
}

/** Runs one command on both and checks that they agree on what the caller can see. */
function step(dac: Dac, model: Model, cmd: Command): void {
  if (cmd.t === 'miss') {
    dac.recordMissCost(cmd.rts);
    model.recordMissCost(cmd.rts);
    return;
  }
  if (cmd.t === 'removeWhere') {
    const match = (key: Uint8Array): boolean => (key[0] as number) % 3 === cmd.mod;
    const removed = dac.removeWhere(match);
    const doomed = [...model.entries.values()].filter((e) => match(encoder.encode(e.key)));
    for (const e of doomed) model.drop(e);
    expect(removed).toBe(doomed.length);
    return;
  }
  const name = keyPool[cmd.key] as string;
  const key = encoder.encode(name);
  const hash = hashKey(key);
  if (cmd.t === 'remove') {
    expect(dac.remove(key, hash)).toBe(model.remove(name));
  } else if (cmd.t === 'insert') {
    const value = bytesOf(cmd.length, cmd.offset);
    const shortcut = {
      entryOffset: cmd.offset,
      entryBytes: cmd.length + 40,
      generation: cmd.offset % 97,
    };
    dac.insert(key, hash, value, shortcut);
    model.insert(name, key.length, value, shortcut);
  } else {
    const expected = model.lookup(name);
    const hit = dac.lookup(key, hash);
    expect(hit).toBe(expected.hit);
    if (hit === DacHit.value) expect(dac.valueView).toEqual(expected.value);
    if (hit === DacHit.shortcut) {
      expect(dac.shortcut).toEqual(expected.shortcut);
      const value = bytesOf(cmd.length, cmd.key);
      dac.afterShortcutRead(key, hash, value);
      model.afterRead(name, value);
    }
  }
}

function compare(dac: Dac, model: Model): void {
  const stats = dac.stats();
  const shortcuts = [...model.entries.values()].filter((e) => e.value === null).length;
  expect({
    bytesUsed: stats.bytesUsed,
    values: stats.values,
    shortcuts: stats.shortcuts,
    valueBytes: stats.valueBytes,
    promotions: stats.promotions,
    demotions: stats.demotions,
    evictions: stats.evictions,
    decays: stats.decays,
    missCost: stats.missCost,
  }).toEqual({
    bytesUsed: model.bytes,
    values: model.lru.length,
    shortcuts,
    valueBytes: model.valueBytes,
    promotions: model.promotions,
    demotions: model.demotions,
    evictions: model.evictions,
    decays: model.decays,
    missCost: model.missCost,
  });
  // The model knows nothing of heap fragmentation: the differential holds only while none happened.
  expect(stats.fragmentationEvictions).toBe(0);
  expect(stats.bytesUsed).toBeLessThanOrEqual(stats.capacityBytes);
}

describe('Dac against the reference model', () => {
  it('agrees on every hit, value, shortcut and counter (randomized, fast-check)', () => {
    fc.assert(
      fc.property(
        setup,
        fc.array(command, { minLength: 1, maxLength: 400, size: 'max' }),
        (options, commands) => {
          const dac = new Dac(options);
          const model = new Model(
            options.capacityBytes,
            options.missCostInitial,
            options.missCostSmoothing,
            options.decayEveryAccesses,
          );
          for (const cmd of commands) {
            step(dac, model, cmd);
            compare(dac, model);
          }
          dac.checkInvariants();
        },
      ),
      { numRuns: 300, seed: 20240611 },
    );
  });
});
