/** Small shared helpers: assertions, seeded randomness. */
export { assert, unreachable, AssertionError } from './assert.js';
export { hashKey } from './hash.js';
export { crc32c } from './crc32c.js';
export { workerScript } from './worker-script.js';
export { SeededRandom, entropySeed, type Random } from './random.js';
