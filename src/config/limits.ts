import { assert } from '../util/assert.js';

/** Hard limits of the data model (DESIGN.md section 12). Options may lower some, never raise them. */
export const keyBytesMax = 1024;
export const valueBytesMax = 1024 * 1024;
/** Redis Cluster's slot count: slot = CRC16(key or {hash tag}) mod 16384. */
export const slotCount = 16384;

/** Every log entry starts with this header; see src/dpm/log-entry.ts and docs/dpm-layout.md. */
export const entryHeaderBytes = 32;
/**
 * Bytes a DINOMO-N thread prefixes to every key it stores (its partition tag, src/dpm/partition-key.ts),
 * so stored keys may be this much longer than clients' keys.
 */
export const keyPrefixBytesMax = 2;
/** The largest entry: header + biggest stored key + biggest value, rounded up to 8 bytes. */
export const entryBytesMax =
  (entryHeaderBytes + keyBytesMax + keyPrefixBytesMax + valueBytesMax + 7) & ~7;
/** Log block header size; entries start right after it. */
export const blockHeaderBytes = 64;
/** A block must hold the largest entry, so blocks are at least 2 MiB. */
export const blockBytesMin = 2 * 1024 * 1024;
/**
 * The smallest block a region can be formatted with. Clusters keep to blockBytesMin; the simulator
 * formats tiny regions with small blocks so block switches, merges and cleaning happen within a few
 * hundred operations, and writes only entries that fit.
 */
export const regionBlockBytesMin = 4096;
/** Blocks are addressed with u32 in-block offsets. */
export const blockBytesLimit = 1024 * 1024 * 1024;

assert(entryBytesMax % 8 === 0, 'the largest entry must be 8-byte aligned');
assert(
  blockBytesMin - blockHeaderBytes >= entryBytesMax,
  'a minimum block must hold the largest entry',
);

/** The index stores table offsets / 64 in 32 bits, so a region is at most 256 GiB. */
export const regionBytesMax = 2 ** 38;
