import { describe, expect, it } from 'vitest';
import { blockBytesMin } from '../../../src/config/limits.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { unpackDescriptor, newTableDescriptor } from '../../../src/dpm/index-format.js';
import {
  Block,
  BlockState,
  IndexBucket,
  IndexHeader,
  Metadata,
  Superblock,
  blockMagic,
  fenceTableOffset,
  regionMagic,
} from '../../../src/dpm/layout.js';
import {
  blockIndexOf,
  blockOffset,
  chainRecordOffset,
  fenceWordOffset,
  formatRegion,
  openRegion,
  slotMapOffset,
} from '../../../src/dpm/region.js';
import { makeRegion } from './dpm-test-kit.js';

const MiB = 1024 * 1024;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isDinomoError(err) ? err.code : `not a DinomoError: ${String(err)}`;
  }
  return 'no error';
}

describe('formatRegion / openRegion', () => {
  it('lays out superblock, metadata, chain table, index and free blocks', () => {
    const sab = new SharedArrayBuffer(16 * MiB);
    const g = formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 3 });
    const region = openRegion(sab);
    expect(region.geometry).toEqual(g);
    expect(g.regionBytes).toBe(16 * MiB);
    expect(g.indexBytes).toBe(2 * MiB); // regionBytes / 8
    expect(g.metadataOffset).toBe(Superblock.bytes);
    expect(g.chainTableOffset).toBeGreaterThan(g.metadataOffset);
    expect(g.indexOffset).toBeGreaterThanOrEqual(g.chainTableOffset + 3 * 64);
    expect(g.blocksOffset).toBeGreaterThanOrEqual(g.indexOffset + g.indexBytes);
    expect(g.blockCount).toBe(Math.floor((16 * MiB - g.blocksOffset) / (2 * MiB)));

    const view = region.view;
    expect(view.getUint32(Superblock.magic, true)).toBe(regionMagic);
    expect(view.getUint32(Superblock.state, true)).toBe(1);
    expect(view.getUint32(g.metadataOffset + Metadata.epoch, true)).toBe(1);
    for (const slot of [0, 1, 9000, 16383]) {
      expect(view.getUint16(slotMapOffset(region) + slot * 2, true)).toBe(0xffff);
    }
    expect(fenceWordOffset(region, 2)).toBe(fenceTableOffset(g.metadataOffset) + 8);
    expect(view.getUint32(fenceWordOffset(region, 2), true)).toBe(0);
    expect(chainRecordOffset(region, 2)).toBe(g.chainTableOffset + 128);
    for (let i = 0; i < g.blockCount; i++) {
      const at = blockOffset(region, i);
      expect(blockIndexOf(g, at + 100)).toBe(i);
      expect(view.getUint32(at + Block.magic, true)).toBe(blockMagic);
      expect(view.getUint32(at + Block.state, true)).toBe(BlockState.free);
      expect(view.getUint32(at + Block.generation, true)).toBe(0);
    }
    const table = unpackDescriptor(
      view.getBigInt64(g.indexOffset + IndexHeader.descriptor, true),
      newTableDescriptor(),
    );
    expect(table.version).toBe(1);
    expect(table.bucketsOffset).toBe(g.indexOffset + IndexHeader.bytes);
    expect(view.getUint32(table.bucketsOffset + IndexBucket.version, true)).toBe(1);
  });

  it('refuses bad geometry with INVALID_OPTION and a message saying what to change', () => {
    const sab = new SharedArrayBuffer(16 * MiB);
    expect(codeOf(() => formatRegion(sab, { blockBytes: 3 * MiB, chainCount: 1 }))).toBe(
      'INVALID_OPTION',
    );
    expect(codeOf(() => formatRegion(sab, { blockBytes: 2048, chainCount: 1 }))).toBe(
      'INVALID_OPTION',
    );
    expect(codeOf(() => formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 0 }))).toBe(
      'INVALID_OPTION',
    );
    expect(codeOf(() => formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 1.5 }))).toBe(
      'INVALID_OPTION',
    );
    expect(
      codeOf(() => formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 1, indexBytes: 100 })),
    ).toBe('INVALID_OPTION');
    expect(
      codeOf(() =>
        formatRegion(new SharedArrayBuffer(4097 * 8), { blockBytes: 2 * MiB, chainCount: 1 }),
      ),
    ).toBe('INVALID_OPTION');
    expect(() => formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 4 })).toThrow(
      /raise regionBytes to at least/,
    );
    // Nothing was marked ready by a refused format.
    expect(codeOf(() => openRegion(sab))).toBe('CORRUPT');
  });

  it('accepts the smallest region: two blocks per chain', () => {
    const region = makeRegion({ chains: 2, blocks: 4, indexBytes: 8192 });
    expect(region.geometry.blockCount).toBe(4);
    expect(region.geometry.blockBytes).toBe(blockBytesMin);
  });

  it('openRegion reports CORRUPT for a bad magic, version, state or size', () => {
    const fresh = (): SharedArrayBuffer => {
      const sab = new SharedArrayBuffer(8 * MiB);
      formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 1 });
      return sab;
    };
    let sab = fresh();
    new DataView(sab).setUint32(Superblock.magic, 0, true);
    expect(codeOf(() => openRegion(sab))).toBe('CORRUPT');
    sab = fresh();
    new DataView(sab).setUint32(Superblock.formatVersion, 99, true);
    expect(codeOf(() => openRegion(sab))).toBe('CORRUPT');
    sab = fresh();
    new DataView(sab).setUint32(Superblock.state, 0, true);
    expect(codeOf(() => openRegion(sab))).toBe('CORRUPT');
    sab = fresh();
    new DataView(sab).setUint32(Superblock.regionBytes, 4 * MiB, true);
    expect(codeOf(() => openRegion(sab))).toBe('CORRUPT');
    expect(codeOf(() => openRegion(new SharedArrayBuffer(64)))).toBe('CORRUPT');
  });

  it('keeps the format identity so that caches can recognise the region', () => {
    const sab = new SharedArrayBuffer(8 * MiB);
    formatRegion(sab, { blockBytes: 2 * MiB, chainCount: 1, formatId: [7, 9] });
    expect(openRegion(sab).formatId).toEqual([7, 9]);
  });
});
