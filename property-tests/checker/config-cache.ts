/**
 * The memo of configurations the search has visited. A configuration is the set of linearized
 * required ops (a bitset), the abstract register state, and how many open puts and open deletes
 * have been used (the search always uses them in call order, so a count identifies the set).
 *
 * Two kinds of hit prune a configuration:
 * - exact: the same bitset, state and counts were visited before;
 * - dominated: a configuration with the same bitset and state but no more open ops used in either
 *   kind has been finished (explored without success). It had every option this one has and more,
 *   since an open op may always be left out, so this one cannot succeed either.
 * Every move of the search linearizes one more required op, so a stored configuration with the same
 * bitset is never on the current search path: with today's moves it is always finished. The flag
 * still keeps the dominance rule correct on its own, should a move that adds no required op appear.
 *
 * Hits are confirmed by exact comparison of the bitset and the state: the hash alone is not trusted,
 * because a false hit would prune a branch that might hold the only linearization and turn a pass
 * into a false violation.
 *
 * Bitsets are copied into one growable Uint32Array pool and found through an open-addressing table,
 * so a new configuration costs a copy of a few words and no object allocation.
 */
export class ConfigCache {
  private readonly words: number;
  private capacity = 1024;
  private pool: Uint32Array;
  private states: Int32Array;
  private hashes: Uint32Array;
  private openPuts: Int32Array;
  private openDeletes: Int32Array;
  private finished: Uint8Array;
  /** Slot -> configuration index + 1; 0 marks an empty slot. Its length is a power of two. */
  private slots: Int32Array;
  private count = 0;

  constructor(words: number) {
    this.words = words;
    this.pool = new Uint32Array(this.capacity * words);
    this.states = new Int32Array(this.capacity);
    this.hashes = new Uint32Array(this.capacity);
    this.openPuts = new Int32Array(this.capacity);
    this.openDeletes = new Int32Array(this.capacity);
    this.finished = new Uint8Array(this.capacity);
    this.slots = new Int32Array(this.capacity * 2);
  }

  /** Number of distinct configurations stored. */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the cache, for the search's memory cap. */
  get bytes(): number {
    return this.capacity * (this.words * 4 + 17) + this.slots.byteLength;
  }

  /**
   * Records a visit. Returns the new configuration's index, or -1 when it is pruned by an exact or
   * a dominating hit. `hash` must depend on the bitset and the state only, so that every
   * configuration that could dominate this one sits in the same probe run.
   */
  visit(hash: number, bits: Uint32Array, state: number, puts: number, deletes: number): number {
    const words = this.words;
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    for (;;) {
      const stored = this.slots[slot] as number;
      if (stored === 0) break;
      const index = stored - 1;
      if (this.hashes[index] === hash && this.states[index] === state) {
        const storedPuts = this.openPuts[index] as number;
        const storedDeletes = this.openDeletes[index] as number;
        const exact = storedPuts === puts && storedDeletes === deletes;
        const dominating =
          this.finished[index] === 1 && storedPuts <= puts && storedDeletes <= deletes;
        if ((exact || dominating) && this.sameBits(index, bits)) return -1;
      }
      slot = (slot + 1) & mask;
    }

    if (this.count === this.capacity) this.grow();
    const index = this.count++;
    this.pool.set(bits, index * words);
    this.states[index] = state;
    this.hashes[index] = hash;
    this.openPuts[index] = puts;
    this.openDeletes[index] = deletes;
    this.slots[slot] = index + 1;
    // Keep the load factor at or below one half so probe runs stay short.
    if (this.count * 2 > this.slots.length) this.rehash();
    return index;
  }

  /** Marks a configuration as explored without success, so it may prune dominated ones. */
  finish(index: number): void {
    this.finished[index] = 1;
  }

  private sameBits(index: number, bits: Uint32Array): boolean {
    const base = index * this.words;
    for (let w = 0; w < this.words; w++) if (this.pool[base + w] !== bits[w]) return false;
    return true;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    this.pool = resized(this.pool, new Uint32Array(capacity * this.words));
    this.states = resized(this.states, new Int32Array(capacity));
    this.hashes = resized(this.hashes, new Uint32Array(capacity));
    this.openPuts = resized(this.openPuts, new Int32Array(capacity));
    this.openDeletes = resized(this.openDeletes, new Int32Array(capacity));
    this.finished = resized(this.finished, new Uint8Array(capacity));
    this.capacity = capacity;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let index = 0; index < this.count; index++) {
      let slot = (this.hashes[index] as number) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = index + 1;
    }
    this.slots = slots;
  }
}

function resized<T extends Uint32Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
