import { DinomoError } from '../errors/index.js';
import { SeededRandom, assert, type Random } from '../util/index.js';

/**
 * The largest key space a generator accepts. The CDF table takes 8 bytes per key, so this caps it at
 * 128 MiB; a cluster that could hold more keys than this is far beyond what one process benchmarks.
 */
export const maxZipfKeys = 2 ** 24;

export interface ZipfOptions {
  /** Size of the key space: samples are in [0, keys). */
  keys: number;
  /** Zipf exponent; 0 means uniform. The paper's skewed runs use 0.99. */
  exponent: number;
  random: Random;
  /**
   * When true, ranks are spread over the key space by a seeded permutation, so the hottest key is not
   * key 0. When false, rank r is key r, as in the original benchmark (hot keys are the smallest).
   */
  scramble?: boolean;
  /** Seed of the scrambling permutation; defaults to the random's seed. */
  scrambleSeed?: number;
}

/**
 * Zipf-distributed key indexes over [0, keys): P(rank r) is proportional to 1 / (r + 1)^s. Like the
 * original, it samples by binary search in a precomputed CDF, but the table is a sized Float64Array
 * (the original `reserve`d a vector and wrote past its size) and its last entry is exactly 1, so every
 * uniform draw in [0, 1) maps to a valid rank.
 */
export class ZipfGenerator {
  readonly keys: number;
  readonly exponent: number;
  private readonly random: Random;
  private readonly cdf: Float64Array | null;
  private readonly permutation: KeyPermutation | null;

  constructor(options: ZipfOptions) {
    const { keys, exponent, random } = options;
    checkZipfOptions(keys, exponent);
    this.keys = keys;
    this.exponent = exponent;
    this.random = random;
    this.cdf = exponent === 0 ? null : buildZipfCdf(keys, exponent);
    this.permutation = options.scramble
      ? new KeyPermutation(keys, options.scrambleSeed ?? random.seed)
      : null;
  }

  /** The next key index in [0, keys). */
  next(): number {
    const rank = this.nextRank();
    return this.permutation === null ? rank : this.permutation.apply(rank);
  }

  /** The next rank in [0, keys): rank 0 is the most popular. */
  nextRank(): number {
    if (this.cdf === null) return this.random.int(this.keys);
    return lowerBoundAbove(this.cdf, this.random.next());
  }

  /** The key index that holds popularity rank `rank`. */
  keyOfRank(rank: number): number {
    return this.permutation === null ? rank : this.permutation.apply(rank);
  }

  /** The theoretical probability of rank `rank`, for tests and reports. */
  probability(rank: number): number {
    assert(Number.isInteger(rank) && rank >= 0 && rank < this.keys, 'rank is in [0, keys)');
    if (this.cdf === null) return 1 / this.keys;
    const below = rank === 0 ? 0 : (this.cdf[rank - 1] as number);
    return (this.cdf[rank] as number) - below;
  }
}

function checkZipfOptions(keys: number, exponent: number): void {
  if (!Number.isInteger(keys) || keys < 1 || keys > maxZipfKeys) {
    throw new DinomoError(
      'INVALID_OPTION',
      `keys must be an integer in [1, ${maxZipfKeys}], got ${keys}`,
    );
  }
  if (!Number.isFinite(exponent) || exponent < 0) {
    throw new DinomoError(
      'INVALID_OPTION',
      `the Zipf exponent must be a finite number >= 0, got ${exponent}`,
    );
  }
}

export interface LatestOptions {
  /** Keys that exist at the start: the table is sized for them and grows with inserts. */
  keys: number;
  /** Zipf exponent over recency; 0 means uniform over the keys that exist. */
  exponent: number;
  random: Random;
}

/**
 * YCSB's `latest` request distribution: the most recently inserted keys are the most popular. Each
 * draw takes a Zipf rank r over the current key count n and returns key index n-1-r, so the hot spot
 * moves with every insert. Key order is recency itself, so there is nothing to scramble.
 *
 * The table holds unnormalized prefix sums of the Zipf weights, so it can grow when inserts raise the
 * key count without recomputing what it has: a draw scales a uniform number by the sum over the first
 * n weights and searches only those. It grows by doubling, up to maxZipfKeys entries; beyond that the
 * oldest keys (ranks of maxZipfKeys and more) are never drawn, which changes the distribution by less
 * than the weight of that far tail.
 */
export class LatestGenerator {
  readonly exponent: number;
  private readonly random: Random;
  private sums: Float64Array;
  private filled = 0;

  constructor(options: LatestOptions) {
    checkZipfOptions(options.keys, options.exponent);
    this.exponent = options.exponent;
    this.random = options.random;
    this.sums = new Float64Array(options.exponent === 0 ? 0 : options.keys);
  }

  /** The next key index in [0, keyCount): keyCount-1, the newest key, is the most popular. */
  next(keyCount: number): number {
    return keyCount - 1 - this.nextRank(keyCount);
  }

  /** The next recency rank in [0, keyCount): rank 0 is the newest key. */
  nextRank(keyCount: number): number {
    assert(Number.isInteger(keyCount) && keyCount >= 1, 'keyCount is a positive integer');
    if (this.exponent === 0) return this.random.int(keyCount);
    const size = Math.min(keyCount, maxZipfKeys);
    this.fill(size);
    const total = this.sums[size - 1] as number;
    return lowerBoundAbove(this.sums, this.random.next() * total, size);
  }

  /** Extends the prefix sums to cover `size` ranks, doubling the table when it is full. */
  private fill(size: number): void {
    if (size <= this.filled) return;
    if (size > this.sums.length) {
      const grown = new Float64Array(Math.min(maxZipfKeys, Math.max(size, 2 * this.sums.length)));
      grown.set(this.sums.subarray(0, this.filled));
      this.sums = grown;
    }
    let running = this.filled === 0 ? 0 : (this.sums[this.filled - 1] as number);
    for (let i = this.filled; i < size; i++) {
      running += Math.pow(i + 1, -this.exponent);
      this.sums[i] = running;
    }
    this.filled = size;
  }
}

/**
 * cdf[i] = P(rank <= i). The sum runs from the largest rank down, so the small terms are added first
 * and do not vanish against the large ones; then each prefix is normalized and the last entry pinned to
 * 1, which removes the rounding gap at the top that would otherwise leave some draws without a rank.
 */
export function buildZipfCdf(keys: number, exponent: number): Float64Array {
  // The terms go into the table first, so each power is computed once.
  const cdf = new Float64Array(keys);
  for (let i = 0; i < keys; i++) cdf[i] = Math.pow(i + 1, -exponent);
  let total = 0;
  for (let i = keys - 1; i >= 0; i--) total += cdf[i] as number;
  let running = 0;
  for (let i = 0; i < keys; i++) {
    running += cdf[i] as number;
    // The ascending prefix may round a hair above the descending total: clamp to keep the table monotone.
    cdf[i] = Math.min(1, running / total);
  }
  cdf[keys - 1] = 1;
  return cdf;
}

/**
 * The smallest i < size with cdf[i] > u, or size-1 when there is none (a draw that rounded up to the
 * total). Requires cdf non-decreasing over its first `size` entries.
 */
function lowerBoundAbove(cdf: Float64Array, u: number, size: number = cdf.length): number {
  let lo = 0;
  let hi = size - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cdf[mid] as number) > u) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/**
 * A seeded pseudo-random permutation of [0, size): a 4-round Feistel network over the smallest
 * even-width bit domain that covers the size, with cycle walking to stay inside [0, size). Cycle
 * walking keeps it a bijection; the domain is less than 4 times the size, so a lookup takes fewer
 * than 4 network evaluations on average. Unlike a hash modulo the size (YCSB's scrambled Zipfian),
 * no two ranks share a key, so the distribution's shape is kept exactly.
 */
export class KeyPermutation {
  readonly size: number;
  private readonly halfBits: number;
  private readonly halfMask: number;
  private readonly roundKeys: Uint32Array;

  constructor(size: number, seed: number) {
    assert(
      Number.isInteger(size) && size >= 1 && size <= 2 ** 30,
      'permutation size is in [1, 2^30]',
    );
    this.size = size;
    const bits = Math.max(2, Math.ceil(Math.log2(size)));
    this.halfBits = Math.ceil(bits / 2);
    this.halfMask = (1 << this.halfBits) - 1;
    const random = new SeededRandom(seed ^ 0x2545f491);
    this.roundKeys = Uint32Array.from({ length: 4 }, () => random.nextU32());
  }

  apply(index: number): number {
    let x = index;
    do x = this.network(x);
    while (x >= this.size);
    return x;
  }

  private network(x: number): number {
    let left = x >>> this.halfBits;
    let right = x & this.halfMask;
    for (const key of this.roundKeys) {
      const next = (left ^ roundFunction(right, key)) & this.halfMask;
      left = right;
      right = next;
    }
    return ((left << this.halfBits) | right) >>> 0;
  }
}

function roundFunction(value: number, key: number): number {
  let h = Math.imul(value ^ key, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

/** The default prefix of benchmark keys: `user:0`, `user:1`, ... (YCSB's `user` table, readable in redis-cli). */
export const defaultKeyPrefix = 'user:';

/** The name of key index `index`. */
export function keyName(index: number, prefix: string = defaultKeyPrefix): string {
  return `${prefix}${index}`;
}
