import { assert } from '../util/assert.js';

/**
 * The byte allocator of the DAC arena: a two-level segregated fit allocator (TLSF, Masmano et al.
 * 2004) over a Uint32Array view of the arena's heap region. It places the variable-sized node
 * records (with their key bytes) and value bytes of the DAC without one JS object per entry.
 *
 * Why TLSF: alloc and free are O(1) (two bitmap scans), freed neighbours coalesce at once (so space
 * freed by small shortcuts is reusable by large values and the other way round), and "good fit"
 * keeps external fragmentation low. Every block carries an 8-byte header; sizes are multiples of 8.
 *
 *   block at byte b:  word b/4     size in bytes | free bit
 *                     word b/4+1   byte offset of the previous physical block (0 = none)
 *                     word b/4+2   next block in its free list (free blocks only, 0 = none)
 *                     word b/4+3   previous block in its free list (free blocks only, 0 = none)
 *
 * The first block starts at byte 8, so 0 never names a block and serves as "none". Callers get the
 * payload offset (block + 8), which is 8-byte aligned. The allocator's state (bitmaps and list
 * heads) lives in a control slice of the arena, so all DAC state is in the SharedArrayBuffer.
 */
export const blockHeaderBytes = 8;
const blockMinBytes = 16;
const freeBit = 1;
const sizeMask = ~7;
const slLog = 4;
const slCount = 1 << slLog;
const flCount = 32;
/** Control words: [0] first-level bitmap, [1..32] second-level bitmaps, then 32 x 16 list heads, then used bytes. */
const ctlFlBitmap = 0;
const ctlSlBitmap = 1;
const ctlHeads = ctlSlBitmap + flCount;
const ctlUsedBytes = ctlHeads + flCount * slCount;
export const allocatorControlWords = ctlUsedBytes + 1;
/** The heap must stay below 2^31 bytes so that sizes survive JS's signed 32-bit bit operations. */
export const allocatorHeapBytesMax = 0x7fff_fff8;

/** The size of the block that holds `payloadBytes`, header included. */
export function blockBytesFor(payloadBytes: number): number {
  return Math.max(blockMinBytes, (payloadBytes + blockHeaderBytes + 7) & sizeMask);
}

function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** The free-list index (first level * 16 + second level) of a block of `size` bytes. */
function listIndex(size: number): number {
  const fl = 31 - Math.clz32(size);
  return (fl << slLog) | ((size >>> (fl - slLog)) & (slCount - 1));
}

export class DacAllocator {
  private readonly ctl: Uint32Array;
  private readonly heap: Uint32Array;
  private readonly heapEnd: number;

  /** `control` has `allocatorControlWords` words; `heap` is the heap region (its length sets the size). */
  constructor(control: Uint32Array, heap: Uint32Array) {
    assert(control.length >= allocatorControlWords, 'allocator control slice too small');
    const bytes = heap.length * 4;
    assert(bytes >= 64 && bytes <= allocatorHeapBytesMax + 8, 'allocator heap size out of range');
    this.ctl = control;
    this.heap = heap;
    this.heapEnd = bytes & sizeMask;
  }

  /** Forgets every block: the heap becomes one free block. */
  reset(): void {
    this.ctl.fill(0, 0, allocatorControlWords);
    const first = blockHeaderBytes;
    this.setHeader(first, this.heapEnd - first, true);
    this.heap[(first >>> 2) + 1] = 0;
    this.insertFree(first);
  }

  /** Bytes of the heap in used blocks, headers and padding included. */
  get usedBytes(): number {
    return this.ctl[ctlUsedBytes] as number;
  }

  /** Allocates room for `payloadBytes`; returns the payload offset, or 0 if no free block is large enough. */
  alloc(payloadBytes: number): number {
    const size = blockBytesFor(payloadBytes);
    const block = this.findFree(size);
    if (block === 0) return 0;
    this.removeFree(block);
    const blockSize = this.sizeOf(block);
    if (blockSize - size >= blockMinBytes) {
      const rest = block + size;
      this.setHeader(rest, blockSize - size, true);
      this.heap[(rest >>> 2) + 1] = block;
      this.linkNextPhysical(rest, blockSize - size);
      this.insertFree(rest);
      this.setHeader(block, size, false);
    } else {
      this.setHeader(block, blockSize, false);
    }
    this.ctl[ctlUsedBytes] = (this.ctl[ctlUsedBytes] as number) + this.sizeOf(block);
    return block + blockHeaderBytes;
  }

  /** Frees the block whose payload starts at `payload`, merging it with free neighbours. */
  free(payload: number): void {
    let block = payload - blockHeaderBytes;
    assert(block >= blockHeaderBytes && block < this.heapEnd, 'free of an offset outside the heap');
    assert(!this.isFree(block), 'double free in the DAC arena');
    let size = this.sizeOf(block);
    this.ctl[ctlUsedBytes] = (this.ctl[ctlUsedBytes] as number) - size;
    const next = block + size;
    if (next < this.heapEnd && this.isFree(next)) {
      this.removeFree(next);
      size += this.sizeOf(next);
    }
    const prev = this.heap[(block >>> 2) + 1] as number;
    if (prev !== 0 && this.isFree(prev)) {
      this.removeFree(prev);
      size += this.sizeOf(prev);
      block = prev;
    }
    this.setHeader(block, size, true);
    this.linkNextPhysical(block, size);
    this.insertFree(block);
  }

  /** The size of the block holding `payload`, header included. */
  blockBytes(payload: number): number {
    return this.sizeOf(payload - blockHeaderBytes);
  }

  /** Walks every block and checks the structure (for tests): returns the number of used blocks. */
  check(): number {
    let used = 0;
    let usedBytes = 0;
    let prev = 0;
    for (let block = blockHeaderBytes; block < this.heapEnd; block += this.sizeOf(block)) {
      assert(this.sizeOf(block) >= blockMinBytes, 'block smaller than the minimum');
      assert(this.heap[(block >>> 2) + 1] === prev, 'broken previous-block link');
      if (!this.isFree(block)) {
        used++;
        usedBytes += this.sizeOf(block);
      } else {
        assert(prev === 0 || !this.isFree(prev), 'two adjacent free blocks');
      }
      prev = block;
    }
    assert(usedBytes === this.usedBytes, 'used byte count drifted');
    return used;
  }

  private sizeOf(block: number): number {
    return (this.heap[block >>> 2] as number) & sizeMask;
  }

  private isFree(block: number): boolean {
    return ((this.heap[block >>> 2] as number) & freeBit) !== 0;
  }

  private setHeader(block: number, size: number, free: boolean): void {
    this.heap[block >>> 2] = size | (free ? freeBit : 0);
  }

  private linkNextPhysical(block: number, size: number): void {
    const next = block + size;
    if (next < this.heapEnd) this.heap[(next >>> 2) + 1] = block;
  }

  /** A free block of at least `size` bytes, or 0. Good fit first, then a scan of the exact-size list. */
  private findFree(size: number): number {
    const fl = 31 - Math.clz32(size);
    const index = listIndex(size + (1 << (fl - slLog)) - 1);
    const found = this.firstListAtOrAbove(index);
    if (found !== 0) return found;
    // Blocks in the list of `size` itself may still be large enough: look before giving up.
    for (let b = this.ctl[ctlHeads + listIndex(size)] as number; b !== 0;) {
      if (this.sizeOf(b) >= size) return b;
      b = this.heap[(b >>> 2) + 2] as number;
    }
    return 0;
  }

  private firstListAtOrAbove(index: number): number {
    let fl = index >>> slLog;
    if (fl >= flCount) return 0;
    let slMap = (this.ctl[ctlSlBitmap + fl] as number) & (~0 << (index & (slCount - 1)));
    if (slMap === 0) {
      const flMap = fl + 1 >= flCount ? 0 : (this.ctl[ctlFlBitmap] as number) & (~0 << (fl + 1));
      if (flMap === 0) return 0;
      fl = ctz(flMap);
      slMap = this.ctl[ctlSlBitmap + fl] as number;
    }
    return this.ctl[ctlHeads + (fl << slLog) + ctz(slMap)] as number;
  }

  private insertFree(block: number): void {
    const index = listIndex(this.sizeOf(block));
    const head = this.ctl[ctlHeads + index] as number;
    const w = block >>> 2;
    this.heap[w + 2] = head;
    this.heap[w + 3] = 0;
    if (head !== 0) this.heap[(head >>> 2) + 3] = block;
    this.ctl[ctlHeads + index] = block;
    const fl = index >>> slLog;
    this.ctl[ctlFlBitmap] = (this.ctl[ctlFlBitmap] as number) | (1 << fl);
    this.ctl[ctlSlBitmap + fl] =
      (this.ctl[ctlSlBitmap + fl] as number) | (1 << (index & (slCount - 1)));
  }

  private removeFree(block: number): void {
    const index = listIndex(this.sizeOf(block));
    const w = block >>> 2;
    const next = this.heap[w + 2] as number;
    const prev = this.heap[w + 3] as number;
    if (next !== 0) this.heap[(next >>> 2) + 3] = prev;
    if (prev !== 0) {
      this.heap[(prev >>> 2) + 2] = next;
      return;
    }
    this.ctl[ctlHeads + index] = next;
    if (next !== 0) return;
    const fl = index >>> slLog;
    const slMap = (this.ctl[ctlSlBitmap + fl] as number) & ~(1 << (index & (slCount - 1)));
    this.ctl[ctlSlBitmap + fl] = slMap;
    if (slMap === 0) this.ctl[ctlFlBitmap] = (this.ctl[ctlFlBitmap] as number) & ~(1 << fl);
  }
}
