import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  KeyPermutation,
  LatestGenerator,
  ZipfGenerator,
  buildZipfCdf,
  keyName,
  maxZipfKeys,
} from '../../../src/bench/index.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { SeededRandom } from '../../../src/util/index.js';

function histogram(generator: ZipfGenerator, samples: number): Uint32Array {
  const counts = new Uint32Array(generator.keys);
  for (let i = 0; i < samples; i++) {
    const index = generator.next();
    counts[index] = (counts[index] ?? 0) + 1;
  }
  return counts;
}

describe('ZipfGenerator', () => {
  it('is uniform when the exponent is 0', () => {
    const keys = 20;
    const samples = 200_000;
    const counts = histogram(
      new ZipfGenerator({ keys, exponent: 0, random: new SeededRandom(7) }),
      samples,
    );
    // Chi-square with 19 degrees of freedom: the 99.9th percentile is 43.8.
    const expected = samples / keys;
    let chiSquare = 0;
    for (const count of counts) chiSquare += (count - expected) ** 2 / expected;
    expect(chiSquare).toBeLessThan(43.8);
  });

  it('gives the top key its theoretical share for s = 0.99', () => {
    const keys = 1000;
    const samples = 400_000;
    const generator = new ZipfGenerator({ keys, exponent: 0.99, random: new SeededRandom(42) });
    let harmonic = 0;
    for (let k = 1; k <= keys; k++) harmonic += k ** -0.99;
    const theory = 1 / harmonic;
    expect(generator.probability(0)).toBeCloseTo(theory, 12);
    const counts = histogram(generator, samples);
    const sigma = Math.sqrt(samples * theory * (1 - theory));
    expect(Math.abs((counts[0] ?? 0) - samples * theory)).toBeLessThan(4 * sigma);
    // Rank 10 (key 9 when unscrambled) has probability theory / 10^0.99.
    const theory10 = theory * 10 ** -0.99;
    const sigma10 = Math.sqrt(samples * theory10 * (1 - theory10));
    expect(Math.abs((counts[9] ?? 0) - samples * theory10)).toBeLessThan(4 * sigma10);
  });

  it('builds a non-decreasing CDF that ends at exactly 1', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.double({ min: 0, max: 4, noNaN: true }),
        (keys, exponent) => {
          const cdf = buildZipfCdf(keys, exponent);
          expect(cdf[keys - 1]).toBe(1);
          let decreases = 0;
          for (let i = 1; i < keys; i++)
            if ((cdf[i] as number) < (cdf[i - 1] as number)) decreases++;
          expect(decreases).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('only samples indexes in [0, keys)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.constantFrom(0, 0.5, 0.99, 1.2, 3),
        fc.boolean(),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (keys, exponent, scramble, seed) => {
          const generator = new ZipfGenerator({
            keys,
            exponent,
            scramble,
            random: new SeededRandom(seed),
          });
          for (let i = 0; i < 200; i++) {
            const index = generator.next();
            expect(Number.isInteger(index) && index >= 0 && index < keys).toBe(true);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('repeats its sequence for the same seed and not for another', () => {
    const draw = (seed: number): number[] => {
      const generator = new ZipfGenerator({
        keys: 100_000,
        exponent: 0.99,
        random: new SeededRandom(seed),
      });
      return Array.from({ length: 50 }, () => generator.next());
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });

  it('keeps the shape when scrambled: the hottest key is the image of rank 0', () => {
    const keys = 5000;
    const plain = new ZipfGenerator({ keys, exponent: 0.99, random: new SeededRandom(9) });
    const scrambled = new ZipfGenerator({
      keys,
      exponent: 0.99,
      random: new SeededRandom(9),
      scramble: true,
    });
    for (let i = 0; i < 1000; i++) expect(scrambled.next()).toBe(scrambled.keyOfRank(plain.next()));
    expect(scrambled.keyOfRank(0)).not.toBe(0);
  });

  it('rejects key counts and exponents out of range with INVALID_OPTION', () => {
    for (const [keys, exponent] of [
      [0, 1],
      [1.5, 1],
      [maxZipfKeys + 1, 1],
      [10, -1],
      [10, Number.NaN],
    ] as const) {
      let caught: unknown;
      try {
        new ZipfGenerator({ keys, exponent, random: new SeededRandom(1) });
      } catch (err) {
        caught = err;
      }
      expect(isDinomoError(caught) && caught.code === 'INVALID_OPTION').toBe(true);
    }
  });

  it('handles a large key space with a bounded table', () => {
    const generator = new ZipfGenerator({
      keys: 2 ** 21,
      exponent: 0.99,
      random: new SeededRandom(5),
    });
    const counts = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const index = generator.next();
      counts.set(index, (counts.get(index) ?? 0) + 1);
    }
    // With 2M keys at s = 0.99 the top key holds about 6.7% of the draws.
    expect((counts.get(0) ?? 0) / 10_000).toBeGreaterThan(0.05);
    expect((counts.get(0) ?? 0) / 10_000).toBeLessThan(0.085);
  });
});

describe('LatestGenerator', () => {
  it('makes the newest key the most popular, with the Zipf share of rank 0', () => {
    const keyCount = 1000;
    const samples = 200_000;
    const latest = new LatestGenerator({
      keys: keyCount,
      exponent: 0.99,
      random: new SeededRandom(3),
    });
    const counts = new Uint32Array(keyCount);
    for (let i = 0; i < samples; i++) {
      const index = latest.next(keyCount);
      counts[index] = (counts[index] ?? 0) + 1;
    }
    const theory = new ZipfGenerator({
      keys: keyCount,
      exponent: 0.99,
      random: new SeededRandom(1),
    }).probability(0);
    const sigma = Math.sqrt(samples * theory * (1 - theory));
    expect(Math.abs((counts[keyCount - 1] ?? 0) - samples * theory)).toBeLessThan(4 * sigma);
    // Popularity falls with age: the newest key beats the next, which beats one 100 inserts older.
    expect(counts[keyCount - 1]).toBeGreaterThan(counts[keyCount - 2] ?? 0);
    expect(counts[keyCount - 2]).toBeGreaterThan(counts[keyCount - 101] ?? 0);
  });

  it('follows the key count: the hot key is always the newest one', () => {
    const latest = new LatestGenerator({ keys: 10, exponent: 0.99, random: new SeededRandom(8) });
    for (const keyCount of [10, 11, 500, 40_000]) {
      const counts = new Map<number, number>();
      for (let i = 0; i < 5000; i++) {
        const index = latest.next(keyCount);
        expect(Number.isInteger(index) && index >= 0 && index < keyCount).toBe(true);
        counts.set(index, (counts.get(index) ?? 0) + 1);
      }
      const [hottest] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0] ?? [-1];
      expect(hottest).toBe(keyCount - 1);
    }
  });

  it('draws the same ranks whether its table grew or was built at full size', () => {
    const grown = new LatestGenerator({ keys: 4, exponent: 0.99, random: new SeededRandom(6) });
    const built = new LatestGenerator({ keys: 5000, exponent: 0.99, random: new SeededRandom(6) });
    const ranks = (generator: LatestGenerator): number[] =>
      Array.from({ length: 2000 }, (_, i) => generator.nextRank(Math.min(5000, 4 + i * 3)));
    expect(ranks(grown)).toEqual(ranks(built));
  });

  it('is uniform over the existing keys when the exponent is 0', () => {
    const latest = new LatestGenerator({ keys: 20, exponent: 0, random: new SeededRandom(2) });
    const samples = 100_000;
    const counts = new Uint32Array(40);
    for (let i = 0; i < samples; i++) {
      const index = latest.next(40);
      counts[index] = (counts[index] ?? 0) + 1;
    }
    // Chi-square with 39 degrees of freedom: the 99.9th percentile is 72.1.
    const expected = samples / 40;
    let chiSquare = 0;
    for (const count of counts) chiSquare += (count - expected) ** 2 / expected;
    expect(chiSquare).toBeLessThan(72.1);
  });

  it('rejects key counts and exponents out of range with INVALID_OPTION', () => {
    for (const [keys, exponent] of [
      [0, 1],
      [maxZipfKeys + 1, 1],
      [10, -0.5],
    ] as const) {
      let caught: unknown;
      try {
        new LatestGenerator({ keys, exponent, random: new SeededRandom(1) });
      } catch (err) {
        caught = err;
      }
      expect(isDinomoError(caught) && caught.code === 'INVALID_OPTION').toBe(true);
    }
  });
});

describe('KeyPermutation', () => {
  it('is a permutation of [0, size) for any size and seed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (size, seed) => {
          const permutation = new KeyPermutation(size, seed);
          const seen = new Uint8Array(size);
          let distinct = 0;
          for (let i = 0; i < size; i++) {
            const image = permutation.apply(i);
            if (Number.isInteger(image) && image >= 0 && image < size && seen[image] === 0)
              distinct++;
            seen[image] = 1;
          }
          expect(distinct).toBe(size);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('spreads the first ranks over the key space', () => {
    const size = 1_000_000;
    const permutation = new KeyPermutation(size, 1);
    const images = Array.from({ length: 100 }, (_, rank) => permutation.apply(rank));
    // Under a random permutation about half of the first 100 ranks land in the upper half.
    expect(images.filter((image) => image >= size / 2).length).toBeGreaterThan(30);
    expect(images.filter((image) => image >= size / 2).length).toBeLessThan(70);
  });
});

describe('keyName', () => {
  it('joins the prefix and the index', () => {
    expect(keyName(42)).toBe('user:42');
    expect(keyName(7, 'k')).toBe('k7');
  });
});
