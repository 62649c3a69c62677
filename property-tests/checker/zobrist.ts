/**
 * Random 32-bit keys for Zobrist hashing: the hash of a set is the XOR of its members' keys, so
 * adding or removing one member costs one XOR. The generator is a fixed-seed splitmix32, which keeps
 * the checker deterministic: the same history always explores the same configurations, so config
 * counts and witnesses are reproducible.
 */
export function zobristKeys(count: number, seed: number): Uint32Array {
  const keys = new Uint32Array(count);
  let s = seed | 0;
  for (let i = 0; i < count; i++) {
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    keys[i] = (z ^ (z >>> 16)) >>> 0;
  }
  return keys;
}
