import { blockBytesMin } from '../../../src/config/limits.js';
import { LocalFabric } from '../../../src/fabric/index.js';
import { Block, Chain, align, commitSealedBit, metadataBytes } from '../../../src/dpm/layout.js';
import { EntryOp, entrySpan, writeEntry, type EntryOpCode } from '../../../src/dpm/log-entry.js';
import {
  chainRecordOffset,
  formatRegion,
  loadU32,
  loadU64,
  openRegion,
  type Region,
} from '../../../src/dpm/region.js';

export const enc = new TextEncoder();
export const dec = new TextDecoder();

export interface TestRegionOptions {
  chains?: number;
  blocks?: number;
  indexBytes?: number;
  blockBytes?: number;
}

/** A formatted, opened region sized for exactly `blocks` log blocks. */
export function makeRegion(options: TestRegionOptions = {}): Region {
  const chains = options.chains ?? 1;
  const blocks = options.blocks ?? 4;
  const blockBytes = options.blockBytes ?? blockBytesMin;
  const indexBytes = options.indexBytes ?? 64 * 1024;
  const regionBytes =
    4096 +
    metadataBytes(chains) +
    align(chains * Chain.bytes, 4096) +
    align(indexBytes, 4096) +
    blocks * blockBytes;
  const sab = new SharedArrayBuffer(regionBytes);
  formatRegion(sab, { blockBytes, chainCount: chains, indexBytes, formatId: [1, 2] });
  return openRegion(sab);
}

export function dpmFabric(region: Region): LocalFabric {
  return new LocalFabric(region.sab);
}

/**
 * Writes a chain the way a KN thread does: entries are staged locally with writeEntry, a commit copies
 * the batch to the block at the commit offset and then publishes the commit word with one 8-byte
 * atomic store. `alloc` stands for the manager's alloc RPC.
 */
export class FakeKn {
  block = 0;
  generation = 0;
  blockSeq = 0;
  committedBytes: number = Block.headerBytes;
  entries = 0;
  private readonly staging: Uint8Array;
  private readonly stagingView: DataView;
  private staged = 0;
  private stagedEntries = 0;

  constructor(
    private readonly region: Region,
    private readonly alloc: (rank: number) => number,
    readonly rank: number,
  ) {
    this.staging = new Uint8Array(region.geometry.blockBytes);
    this.stagingView = new DataView(this.staging.buffer);
  }

  put(key: string | Uint8Array, value: string | Uint8Array, epoch: number, seq: number): number {
    return this.append(
      EntryOp.put,
      key,
      typeof value === 'string' ? enc.encode(value) : value,
      epoch,
      seq,
    );
  }

  del(key: string | Uint8Array, epoch: number, seq: number): number {
    return this.append(EntryOp.delete, key, null, epoch, seq);
  }

  /** Stages one entry; returns the region offset it will have once committed. */
  append(
    op: EntryOpCode,
    key: string | Uint8Array,
    value: Uint8Array | null,
    epoch: number,
    seq: number,
    flags = 0,
  ): number {
    const k = typeof key === 'string' ? enc.encode(key) : key;
    const size = entrySpan(k.length, value === null ? 0 : value.length, flags);
    if (this.block === 0) this.nextBlock();
    if (this.committedBytes + this.staged + size > this.region.geometry.blockBytes) {
      this.commit();
      this.seal();
      this.nextBlock();
    }
    const at = this.staged;
    this.staged += writeEntry(
      this.staging,
      this.stagingView,
      at,
      op,
      k,
      value,
      this.generation,
      epoch,
      seq,
      flags,
    );
    this.stagedEntries++;
    return this.block + this.committedBytes + at;
  }

  /** Writes staged entries to the block, then the commit word (ordered after the data). */
  commit(): void {
    if (this.block === 0) this.nextBlock();
    this.region.bytes.set(this.staging.subarray(0, this.staged), this.block + this.committedBytes);
    this.committedBytes += this.staged;
    this.entries += this.stagedEntries;
    this.staged = 0;
    this.stagedEntries = 0;
    this.storeCommit(false);
  }

  seal(): void {
    this.storeCommit(true);
  }

  /** Writes raw bytes beyond the commit offset, as a torn batch would leave them. */
  writeTorn(bytes: Uint8Array): void {
    this.region.bytes.set(bytes, this.block + this.committedBytes);
  }

  private storeCommit(sealed: boolean): void {
    const info = (this.entries | (sealed ? commitSealedBit : 0)) >>> 0;
    const word = (BigInt(info) << 32n) | BigInt(this.committedBytes);
    Atomics.store(this.region.i64, (this.block + Block.commitWord) / 8, BigInt.asIntN(64, word));
  }

  private nextBlock(): void {
    this.block = this.alloc(this.rank);
    this.generation = loadU32(this.region, this.block + Block.generation);
    this.blockSeq = loadU32(this.region, this.block + Block.blockSeq);
    this.committedBytes = Block.headerBytes;
    this.entries = 0;
  }
}

export function chainField(region: Region, rank: number, field: number): number {
  const at = chainRecordOffset(region, rank) + field;
  return field === Chain.headBlock || field === Chain.tailBlock || field === Chain.mergedLsn
    ? loadU64(region, at)
    : loadU32(region, at);
}

export function blockField(region: Region, block: number, field: number): number {
  return loadU32(region, block + field);
}
