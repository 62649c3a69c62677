import {
  blockBytesLimit,
  regionBlockBytesMin,
  regionBytesMax,
  slotCount,
} from '../config/limits.js';
import { DinomoError } from '../errors/index.js';
import { entropySeed } from '../util/random.js';
import { indexBytesMin, initIndexArea } from './index-format.js';
import {
  Block,
  BlockState,
  Chain,
  Metadata,
  Superblock,
  SuperblockState,
  align,
  blockMagic,
  fenceTableOffset,
  metadataBytes,
  regionFormatVersion,
  regionMagic,
  superblockFormatIdOffset,
} from './layout.js';

/** Where everything is inside a region; read from the superblock, shared with KN threads. */
export interface RegionGeometry {
  readonly regionBytes: number;
  readonly blockBytes: number;
  readonly blockCount: number;
  readonly blocksOffset: number;
  readonly chainTableOffset: number;
  readonly chainCount: number;
  readonly metadataOffset: number;
  readonly indexOffset: number;
  readonly indexBytes: number;
}

/** An opened region: its geometry and the typed views DPM-side code works through. */
export interface Region {
  readonly sab: SharedArrayBuffer;
  readonly geometry: RegionGeometry;
  /** 64-bit identity written at format time (two u32 halves). */
  readonly formatId: readonly [number, number];
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly i32: Int32Array;
  readonly i64: BigInt64Array;
}

export interface FormatOptions {
  blockBytes: number;
  chainCount: number;
  /** Bytes for the index area; default regionBytes / 8 (rounded up to 4 KiB). */
  indexBytes?: number;
  /** Region identity; default from the environment's entropy. Tests may pin it. */
  formatId?: readonly [number, number];
}

/** The slot map uses 0xffff for "unassigned", so ranks are 0..0xfffe. */
export const chainCountMax = 0xfffe;
/** Bucket table offsets are stored divided by 64 in a u32 (IndexHeader.descriptor). */
export { regionBytesMax };
const pageBytes = 4096;

/**
 * Lays out a fresh region in `sab`: superblock, cluster metadata (epoch 1, every slot unassigned, no
 * rank fenced), zeroed chain table, index area with an empty initial table, and every log block free.
 * The superblock's state becomes `ready` last, so a region whose formatting was interrupted is never
 * opened.
 */
export function formatRegion(sab: SharedArrayBuffer, options: FormatOptions): RegionGeometry {
  const geometry = planGeometry(sab.byteLength, options);
  const bytes = new Uint8Array(sab);
  const view = new DataView(sab);
  const i32 = new Int32Array(sab);
  Atomics.store(i32, Superblock.state / 4, SuperblockState.formatting);
  bytes.fill(0, 0, geometry.blocksOffset);

  view.setUint32(Superblock.magic, regionMagic, true);
  view.setUint32(Superblock.formatVersion, regionFormatVersion, true);
  setU64(view, Superblock.regionBytes, geometry.regionBytes);
  view.setUint32(Superblock.blockBytes, geometry.blockBytes, true);
  view.setUint32(Superblock.blockCount, geometry.blockCount, true);
  setU64(view, Superblock.metadataOffset, geometry.metadataOffset);
  setU64(view, Superblock.chainTableOffset, geometry.chainTableOffset);
  view.setUint32(Superblock.chainCount, geometry.chainCount, true);
  setU64(view, Superblock.indexOffset, geometry.indexOffset);
  setU64(view, Superblock.indexBytes, geometry.indexBytes);
  setU64(view, Superblock.blocksOffset, geometry.blocksOffset);
  const formatId = options.formatId ?? [entropySeed(), entropySeed()];
  view.setUint32(superblockFormatIdOffset, formatId[0] >>> 0, true);
  view.setUint32(superblockFormatIdOffset + 4, formatId[1] >>> 0, true);

  view.setUint32(geometry.metadataOffset + Metadata.epoch, 1, true);
  const slotMap = geometry.metadataOffset + Metadata.slotMap;
  for (let slot = 0; slot < slotCount; slot++) {
    view.setUint16(slotMap + slot * 2, Metadata.slotUnassigned, true);
  }
  initIndexArea(bytes, view, geometry.indexOffset, geometry.indexBytes);
  for (let i = 0; i < geometry.blockCount; i++) {
    const at = geometry.blocksOffset + i * geometry.blockBytes;
    bytes.fill(0, at, at + Block.headerBytes);
    view.setUint32(at + Block.magic, blockMagic, true);
    view.setUint32(at + Block.state, BlockState.free, true);
  }
  Atomics.store(i32, Superblock.state / 4, SuperblockState.ready);
  return geometry;
}

function planGeometry(regionBytes: number, options: FormatOptions): RegionGeometry {
  const { blockBytes, chainCount } = options;
  if (regionBytes % pageBytes !== 0 || regionBytes > regionBytesMax) {
    invalid(`regionBytes ${regionBytes} must be a multiple of ${pageBytes} and at most 2^38`);
  }
  const isPow2 =
    Number.isInteger(blockBytes) && blockBytes > 0 && (blockBytes & (blockBytes - 1)) === 0;
  if (!isPow2 || blockBytes < regionBlockBytesMin || blockBytes > blockBytesLimit) {
    invalid(
      `blockBytes ${blockBytes} must be a power of two between ${regionBlockBytesMin} and ${blockBytesLimit}`,
    );
  }
  if (!Number.isInteger(chainCount) || chainCount < 1 || chainCount > chainCountMax) {
    invalid(`chainCount ${chainCount} must be an integer from 1 to ${chainCountMax}`);
  }
  const requestedIndex = options.indexBytes ?? Math.floor(regionBytes / 8);
  if (!Number.isInteger(requestedIndex) || requestedIndex < indexBytesMin) {
    invalid(`indexBytes ${requestedIndex} must be an integer of at least ${indexBytesMin}`);
  }
  const metadataOffset = Superblock.bytes;
  const chainTableOffset = metadataOffset + metadataBytes(chainCount);
  const indexOffset = chainTableOffset + align(chainCount * Chain.bytes, pageBytes);
  const indexBytes = align(requestedIndex, pageBytes);
  const blocksOffset = indexOffset + indexBytes;
  const blockCount = Math.max(0, Math.floor((regionBytes - blocksOffset) / blockBytes));
  if (blockCount < 2 * chainCount) {
    const needed = blocksOffset + 2 * chainCount * blockBytes;
    invalid(
      `a ${regionBytes}-byte region holds ${blockCount} log blocks of ${blockBytes} bytes, but ` +
        `${chainCount} chains need at least ${2 * chainCount}: raise regionBytes to at least ` +
        `${align(needed, pageBytes)}, or lower blockBytes, chainCount or indexBytes`,
    );
  }
  return {
    regionBytes,
    blockBytes,
    blockCount,
    blocksOffset,
    chainTableOffset,
    chainCount,
    metadataOffset,
    indexOffset,
    indexBytes,
  };
}

function invalid(message: string): never {
  throw new DinomoError('INVALID_OPTION', message);
}

/** Opens a formatted region: checks the superblock and returns its geometry and views. */
export function openRegion(sab: SharedArrayBuffer): Region {
  if (sab.byteLength < Superblock.bytes || sab.byteLength % 8 !== 0) {
    corrupt(`a ${sab.byteLength}-byte buffer cannot hold a region`);
  }
  const view = new DataView(sab);
  const i32 = new Int32Array(sab);
  if (view.getUint32(Superblock.magic, true) !== regionMagic) corrupt('bad superblock magic');
  const version = view.getUint32(Superblock.formatVersion, true);
  if (version !== regionFormatVersion) corrupt(`unknown region format version ${version}`);
  if (Atomics.load(i32, Superblock.state / 4) !== SuperblockState.ready) {
    corrupt('the region was not fully formatted (superblock state is not ready)');
  }
  const geometry: RegionGeometry = {
    regionBytes: getU64(view, Superblock.regionBytes),
    blockBytes: view.getUint32(Superblock.blockBytes, true),
    blockCount: view.getUint32(Superblock.blockCount, true),
    blocksOffset: getU64(view, Superblock.blocksOffset),
    chainTableOffset: getU64(view, Superblock.chainTableOffset),
    chainCount: view.getUint32(Superblock.chainCount, true),
    metadataOffset: getU64(view, Superblock.metadataOffset),
    indexOffset: getU64(view, Superblock.indexOffset),
    indexBytes: getU64(view, Superblock.indexBytes),
  };
  checkGeometry(geometry, sab.byteLength);
  return {
    sab,
    geometry,
    formatId: [
      view.getUint32(superblockFormatIdOffset, true),
      view.getUint32(superblockFormatIdOffset + 4, true),
    ],
    bytes: new Uint8Array(sab),
    view,
    i32,
    i64: new BigInt64Array(sab),
  };
}

function checkGeometry(g: RegionGeometry, bufferBytes: number): void {
  const ordered =
    g.metadataOffset >= Superblock.bytes &&
    g.chainTableOffset >= g.metadataOffset + metadataBytes(g.chainCount) &&
    g.indexOffset >= g.chainTableOffset + g.chainCount * Chain.bytes &&
    g.blocksOffset >= g.indexOffset + g.indexBytes &&
    g.blocksOffset + g.blockCount * g.blockBytes <= g.regionBytes;
  if (g.regionBytes !== bufferBytes) {
    corrupt(`the superblock says ${g.regionBytes} bytes but the buffer has ${bufferBytes}`);
  }
  if (
    !ordered ||
    g.chainCount < 1 ||
    g.blockBytes < regionBlockBytesMin ||
    g.indexBytes < indexBytesMin
  ) {
    corrupt('the superblock geometry is inconsistent');
  }
}

function corrupt(message: string): never {
  throw new DinomoError('CORRUPT', message);
}

export function chainRecordOffset(region: Region, rank: number): number {
  return region.geometry.chainTableOffset + rank * Chain.bytes;
}

export function blockOffset(region: Region, blockIndex: number): number {
  return region.geometry.blocksOffset + blockIndex * region.geometry.blockBytes;
}

/** The index of the block that contains region offset `offset` (which must be in the block area). */
export function blockIndexOf(geometry: RegionGeometry, offset: number): number {
  return Math.floor((offset - geometry.blocksOffset) / geometry.blockBytes);
}

export function fenceWordOffset(region: Region, rank: number): number {
  return fenceTableOffset(region.geometry.metadataOffset) + rank * 4;
}

export function slotMapOffset(region: Region): number {
  return region.geometry.metadataOffset + Metadata.slotMap;
}

/** Reads a u64 field that holds an exact JS number (below 2^53). Not atomic. */
export function getU64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * 0x1_0000_0000;
}

/** Writes a u64 field from an exact JS number. Not atomic: only for fields nobody reads concurrently. */
export function setU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value >>> 0, true);
  view.setUint32(at + 4, Math.floor(value / 0x1_0000_0000), true);
}

/** Atomic 8-byte load of a u64 field holding an exact JS number. */
export function loadU64(region: Region, at: number): number {
  return Number(BigInt.asUintN(64, Atomics.load(region.i64, at / 8)));
}

/** Atomic 8-byte store of a u64 field, so one-sided readers never see half of it. */
export function storeU64(region: Region, at: number, value: number): void {
  Atomics.store(region.i64, at / 8, BigInt(value));
}

/** Atomic load of a u32 field. */
export function loadU32(region: Region, at: number): number {
  return Atomics.load(region.i32, at / 4) >>> 0;
}

/** Atomic store of a u32 field. */
export function storeU32(region: Region, at: number, value: number): void {
  Atomics.store(region.i32, at / 4, value | 0);
}
