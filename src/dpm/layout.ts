/**
 * The DPM region layout: the contract between KN threads (one-sided readers and log writers) and
 * DPM-side code (merge, allocation). Every pointer inside the region is a byte offset from the region
 * start. All multi-byte fields are little-endian; 8-byte fields are 8-byte aligned so that they can be
 * read and written atomically (BigInt64Array / Atomics in process, RDMA 8-byte atomics on a NIC).
 * docs/dpm-layout.md draws the same thing with more words.
 *
 *   0                 4 KiB            metadataOffset+...    chainTableOffset     indexOffset        blocksOffset
 *   +-----------------+------------------------------------+--------------------+------------------+----------------------+
 *   | superblock      | cluster metadata: epoch, slot map,  | chain table:       | index area:      | log blocks:          |
 *   | magic, version, | fence words per rank                | 64 B per KN thread | header + bucket  | blockCount x         |
 *   | geometry        |                                    | rank               | tables, overflow | blockBytes           |
 *   +-----------------+------------------------------------+--------------------+------------------+----------------------+
 */

/** 'DNMO' little-endian. */
export const regionMagic = 0x4f4d4e44;
export const regionFormatVersion = 1;

/** Superblock field offsets (bytes from region start). */
export const Superblock = {
  bytes: 4096,
  magic: 0, // u32
  formatVersion: 4, // u32
  regionBytes: 8, // u64
  blockBytes: 16, // u32
  blockCount: 20, // u32
  metadataOffset: 24, // u64
  chainTableOffset: 32, // u64
  chainCount: 40, // u32: the number of KN thread ranks the chain table has room for
  state: 44, // u32: 0 = being formatted, 1 = ready
  indexOffset: 48, // u64
  indexBytes: 56, // u64
  blocksOffset: 64, // u64
  doorbell: 72, // u32: bumped (Atomics.add + notify) by KN threads after a commit, in process only
} as const;

export const SuperblockState = { formatting: 0, ready: 1 } as const;

/**
 * Cluster metadata, at `metadataOffset`: the M-node persists here, so the DPM is the source of truth.
 *   0   u32 epoch of the slot map
 *   8   u16[16384] slot -> owning KN thread rank (0xffff = unassigned)
 *   ... u32[chainCount] fence words: 0 = the rank may write, anything else = fenced (writes fail)
 */
export const Metadata = {
  epoch: 0,
  slotMap: 8,
  slotUnassigned: 0xffff,
} as const;

export function fenceTableOffset(metadataOffset: number): number {
  return metadataOffset + Metadata.slotMap + 16384 * 2;
}

export function metadataBytes(chainCount: number): number {
  return align(Metadata.slotMap + 16384 * 2 + chainCount * 4, 4096);
}

/**
 * Chain table: one 64-byte record per KN thread rank, at `chainTableOffset + rank * 64`.
 * A chain is the thread's log: blocks linked oldest -> newest through each block header's `next`.
 */
export const Chain = {
  bytes: 64,
  headBlock: 0, // u64: oldest block that is not yet fully merged (0 = empty chain)
  tailBlock: 8, // u64: newest block, the one the KN thread appends to
  mergedLsn: 16, // u64 (as a double-safe integer): every entry with lsn < mergedLsn is in the index
  nextBlockSeq: 24, // u32: sequence number the next block of this chain gets
  mergeLock: 28, // u32: 0 = free, 1 = a merge task owns this chain
  blocksInChain: 32, // u32: blocks linked in this chain and not yet fully merged
} as const;

/**
 * Log block header: 64 bytes at the start of every block; entries follow.
 *
 *   0  u32 magic 'BLK1'          16 u32 state (see BlockState)      32 u64 next (newer block, 0 = none)
 *   4  u32 generation            20 u32 chain rank                  40 u32 live entries (DPM)
 *   8  u32 commit bytes  \ one   24 u32 block seq in its chain      44 u32 live bytes (DPM)
 *   12 u32 commit info   / u64   28 u32 merged bytes (DPM)          48 u32 pinned (DPM)
 *                                                                   52..63 reserved
 *
 * The commit word (bytes 8..15) is written by the owning KN thread with one 8-byte store after the
 * batch data: `commitBytes` is the end of the committed entries (from the block start), `commitInfo`
 * is the entry count in bits 0..30 and the "sealed" flag in bit 31 (the KN moved on to the next block).
 * Nothing at or beyond `commitBytes` is committed.
 */
export const Block = {
  headerBytes: 64,
  magic: 0,
  generation: 4,
  commitWord: 8,
  commitBytes: 8,
  commitInfo: 12,
  state: 16,
  chainRank: 20,
  blockSeq: 24,
  mergedBytes: 28,
  next: 32,
  liveEntries: 40,
  /**
   * Padded bytes of the entries that index slots point to (u32, kept with liveEntries under the
   * index writer lock). The cleaner compares it with the block size to pick blocks to compact.
   */
  liveBytes: 44,
  /**
   * Non-zero once the block holds a version that a clover-mode chain may link to (docs/baselines.md):
   * such a block is never freed or cleaned, because links and shortcuts reach its entries directly.
   */
  pinned: 48,
} as const;

/** 'BLK1' little-endian. */
export const blockMagic = 0x314b4c42;
/**
 * Block states. `cleanerOpen` and `cleaning` belong to the cleaner (cleaner.ts): an open cleaner
 * destination block (chain rank `cleanerChainRank`, entries indexed as soon as they are copied) and a
 * merged block whose live entries are being copied out. Merges never free a block in either state;
 * the cleaner does, under the index writer lock. A recovery pass may treat both like `merged`.
 */
export const BlockState = { free: 0, chain: 1, merged: 2, cleanerOpen: 3, cleaning: 4 } as const;
/** The chain rank stamped on cleaner destination blocks: no KN chain has it (ranks stop at 0xfffe). */
export const cleanerChainRank = 0xffff_ffff;
export const commitSealedBit = 0x8000_0000;

/**
 * Log sequence number: the position of an entry in its chain, `blockSeq * 2^32 + offsetInBlock`,
 * kept below 2^53 so it is an exact JS number (2^21 blocks per chain lifetime).
 */
export function lsnOf(blockSeq: number, offsetInBlock: number): number {
  return blockSeq * 0x1_0000_0000 + offsetInBlock;
}

export function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}

/**
 * Superblock field added for caching: a 64-bit identity written by formatRegion (two u32 halves at
 * +80 and +84), so a worker thread that receives the same region again in a new SharedArrayBuffer
 * object can tell that its cached views still describe it.
 */
export const superblockFormatIdOffset = 80;

/**
 * Index area header: 64 bytes at `indexOffset`. Only DPM-side code writes it; KN threads read just
 * the table descriptor, with one atomic 8-byte read.
 *
 *   0  i32 writer lock (0 free, 1 held, 2 held with waiters)     24 u32 active half (0 or 1)
 *   8  u64 table descriptor (see below)                          28 u32 version whose growth failed
 *   16 u32 indexed key count                                     32 u64 bump offset in the active half
 *   20 u32 overflow buckets in the live table                    40 u64 half size in bytes
 *   48 u64 region offset of half 0 (half 1 follows it)           56 u32 growths completed
 *
 * The table descriptor packs the live table's geometry into one word so that a reader can never see
 * a torn mix of two tables: low u32 = bucketsOffset / 64, high u32 = version << 6 | log2(bucketCount).
 */
export const IndexHeader = {
  bytes: 64,
  lock: 0,
  descriptor: 8,
  entryCount: 16,
  overflowBuckets: 20,
  activeHalf: 24,
  growthFailedVersion: 28,
  bumpOffset: 32,
  halfBytes: 40,
  dataOffset: 48,
  growths: 56,
} as const;

/**
 * Index bucket: 64 bytes, 64-byte aligned. Word 0 holds the version of the table the bucket belongs
 * to (low u32; 0xffffffff = retired, 0 = never used); words 1..6 are slots; word 7 is the region
 * offset of the next overflow bucket (0 = none).
 */
export const IndexBucket = {
  bytes: 64,
  version: 0,
  firstSlot: 8,
  slotCount: 6,
  overflow: 56,
  retiredVersion: 0xffff_ffff,
} as const;

/**
 * Index slot (u64, 0 = empty): fingerprint in bits 48..63 (never 0), size hint class in bits 40..47,
 * entry offset / 8 in bits 0..39.
 */
export const IndexSlot = {
  fingerprintShift: 48,
  sizeHintShift: 40,
  offsetBits: 40,
} as const;
