import { DinomoError } from '../errors/index.js';
import { assert } from '../util/assert.js';
import { Block, BlockState, Chain, blockMagic, cleanerChainRank, lsnOf } from './layout.js';
import { noFlush, type RegionFlush } from './region-flush.js';
import {
  blockIndexOf,
  chainRecordOffset,
  loadU32,
  loadU64,
  storeU32,
  storeU64,
  type Region,
} from './region.js';

export interface SpaceStats {
  blocksTotal: number;
  blocksFree: number;
  bytesUsed: number;
}

export interface AllocatorOptions {
  /**
   * Free blocks KN chains may not take: they are kept for the cleaner, which needs a destination
   * block to free space (copying a victim's live entries out before the victim can be freed). Without
   * a reserve, KN chains could take the last free block and leave the region full for good even
   * though most of it is dead. Default 0.
   */
  cleanerReserve?: number;
  /** The region's flush barrier (durability 'sync'; see allocate). Default: none. */
  flush?: RegionFlush;
}

/** lsnOf keeps blockSeq * 2^32 below 2^53, so a chain may use 2^21 block sequence numbers. */
export const blockSeqLimit = 2 ** 21;

/**
 * Hands out log blocks. Owned by the single DPM manager, so it needs no lock of its own; it races only
 * with merges, which touch different fields (see allocate). Freed blocks are reused in FIFO order, so
 * a block stays free as long as possible before its generation is bumped and it is written again.
 *
 * With durability 'sync' (a `flush` barrier), reusing a block follows three rules in the region's
 * file as well as in memory: whatever made the block free (the index updates that killed its last
 * entry, the cleaner's repoints, its chain moving past it) is flushed before its header is rewritten;
 * the new header is flushed before a chain links to the block; and the link is flushed before the
 * block is handed out, since the KN thread acknowledges writes in it from then on. Allocation happens
 * once per log block, so these few flushes are rare.
 */
export class BlockAllocator {
  private readonly region: Region;
  private readonly ring: Int32Array;
  private readonly isFree: Uint8Array;
  private readonly reserve: number;
  private readonly flush: RegionFlush;
  /**
   * True when blocks were freed since the last flush: the next reuse flushes first. It starts true,
   * because nothing says the free states this allocator starts from were flushed.
   */
  private freedSinceFlush = true;
  private head = 0;
  private count = 0;

  constructor(region: Region, options: AllocatorOptions = {}) {
    this.region = region;
    this.reserve = options.cleanerReserve ?? 0;
    this.flush = options.flush ?? noFlush;
    assert(
      Number.isInteger(this.reserve) &&
        this.reserve >= 0 &&
        this.reserve < region.geometry.blockCount,
      'the cleaner reserve is a whole number of blocks below the block count',
    );
    this.ring = new Int32Array(region.geometry.blockCount);
    this.isFree = new Uint8Array(region.geometry.blockCount);
    this.rebuildFromRegion();
  }

  /** Rebuilds the free list from the block headers (at start, and after recovery). */
  rebuildFromRegion(): void {
    const { blockCount, blocksOffset, blockBytes } = this.region.geometry;
    this.head = 0;
    this.count = 0;
    this.isFree.fill(0);
    for (let i = 0; i < blockCount; i++) {
      const at = blocksOffset + i * blockBytes;
      if (loadU32(this.region, at + Block.magic) !== blockMagic) {
        throw new DinomoError('CORRUPT', `log block ${i} at ${at} has a bad magic number`);
      }
      if (loadU32(this.region, at + Block.state) === BlockState.free) this.push(i);
    }
  }

  /**
   * Takes a free block, stamps a new generation and header, and links it as the new tail of chain
   * `rank`. Returns its region offset. The block is fully written before the link (an atomic store)
   * makes it reachable for merges. Merges never touch `tailBlock` or `nextBlockSeq`, and they move
   * `headBlock` only along `next`, never to or from 0, so the allocator can update those without the
   * index lock; `blocksInChain` changes with atomic adds on both sides.
   */
  allocate(rank: number): number {
    const g = this.region.geometry;
    if (!Number.isInteger(rank) || rank < 0 || rank >= g.chainCount) {
      throw new DinomoError(
        'INVALID_OPTION',
        `chain rank ${rank} is not in 0..${g.chainCount - 1}`,
      );
    }
    const chain = chainRecordOffset(this.region, rank);
    const view = this.region.view;
    const seq = view.getUint32(chain + Chain.nextBlockSeq, true);
    if (seq >= blockSeqLimit) {
      throw new DinomoError('REGION_FULL', `chain ${rank} used all ${blockSeqLimit} block numbers`);
    }
    if (!this.hasBlockForChain()) {
      throw new DinomoError(
        'REGION_FULL',
        `all ${g.blockCount} log blocks are in use (${this.count} kept for the cleaner); wait for ` +
          'merges and cleaning to free some or raise regionBytes',
      );
    }
    const block = this.popFree();
    this.stampHeader(block, rank, seq, BlockState.chain);
    this.flushNow();
    view.setUint32(chain + Chain.nextBlockSeq, seq + 1, true);
    const tail = loadU64(this.region, chain + Chain.tailBlock);
    if (loadU64(this.region, chain + Chain.headBlock) === 0) {
      storeU64(this.region, chain + Chain.mergedLsn, lsnOf(seq, Block.headerBytes));
      storeU64(this.region, chain + Chain.tailBlock, block);
      storeU64(this.region, chain + Chain.headBlock, block);
    } else {
      storeU64(this.region, tail + Block.next, block);
      storeU64(this.region, chain + Chain.tailBlock, block);
    }
    Atomics.add(this.region.i32, (chain + Chain.blocksInChain) / 4, 1);
    this.flushNow();
    return block;
  }

  /** True when a KN chain may take a block now (more blocks are free than the cleaner reserve). */
  hasBlockForChain(): boolean {
    return this.count > this.reserve;
  }

  /** Free blocks that only the cleaner may take (see AllocatorOptions.cleanerReserve). */
  get cleanerReserve(): number {
    return this.reserve;
  }

  /** Free blocks, the cleaner reserve included. */
  get freeCount(): number {
    return this.count;
  }

  /**
   * Takes a free block for the cleaner (the reserve included): a new generation, chain rank
   * `cleanerChainRank`, state `cleanerOpen`, linked into no chain. `seq` is informational (the
   * cleaner numbers its blocks). Returns its region offset.
   */
  allocateCleanerBlock(seq: number): number {
    if (this.count === 0) {
      throw new DinomoError('REGION_FULL', 'no free log block for the cleaner');
    }
    const block = this.popFree();
    // No flush after the header: nothing in the file points at a cleaner block until the cleaner
    // has flushed its copies and this header with them (cleaner.ts).
    this.stampHeader(block, cleanerChainRank, seq >>> 0, BlockState.cleanerOpen);
    return block;
  }

  /** Returns blocks that merges set free (their offsets) to the free list. */
  release(blocks: readonly number[]): void {
    for (const block of blocks) {
      assert(
        loadU32(this.region, block + Block.state) === BlockState.free,
        'released blocks are free',
      );
      this.push(blockIndexOf(this.region.geometry, block));
      this.freedSinceFlush = true;
    }
  }

  stats(): SpaceStats {
    const { blockCount, blockBytes } = this.region.geometry;
    return {
      blocksTotal: blockCount,
      blocksFree: this.count,
      bytesUsed: (blockCount - this.count) * blockBytes,
    };
  }

  /** Takes a free block; flushes first when a block was freed since the last flush. */
  private popFree(): number {
    if (this.freedSinceFlush) this.flushNow();
    const block = this.region.geometry.blocksOffset + this.pop() * this.region.geometry.blockBytes;
    assert(
      loadU32(this.region, block + Block.state) === BlockState.free,
      'allocated blocks are free',
    );
    return block;
  }

  private flushNow(): void {
    this.flush();
    this.freedSinceFlush = false;
  }

  private stampHeader(block: number, rank: number, seq: number, state: number): void {
    const view = this.region.view;
    const generation = (loadU32(this.region, block + Block.generation) + 1) >>> 0 || 1;
    this.region.bytes.fill(0, block + Block.liveEntries, block + Block.headerBytes);
    storeU64(this.region, block + Block.commitWord, 0);
    storeU64(this.region, block + Block.next, 0);
    view.setUint32(block + Block.magic, blockMagic, true);
    storeU32(this.region, block + Block.generation, generation);
    storeU32(this.region, block + Block.chainRank, rank);
    storeU32(this.region, block + Block.blockSeq, seq);
    storeU32(this.region, block + Block.mergedBytes, 0);
    storeU32(this.region, block + Block.state, state);
  }

  private push(blockIndex: number): void {
    assert(this.isFree[blockIndex] === 0, 'a block is on the free list at most once');
    assert(this.count < this.ring.length, 'the free list holds at most every block');
    this.isFree[blockIndex] = 1;
    this.ring[(this.head + this.count) % this.ring.length] = blockIndex;
    this.count++;
  }

  private pop(): number {
    const blockIndex = this.ring[this.head] as number;
    this.head = (this.head + 1) % this.ring.length;
    this.count--;
    this.isFree[blockIndex] = 0;
    return blockIndex;
  }
}
