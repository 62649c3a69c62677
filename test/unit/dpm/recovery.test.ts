import { describe, expect, it } from 'vitest';
import { BlockAllocator } from '../../../src/dpm/block-allocator.js';
import { Block, commitSealedBit } from '../../../src/dpm/layout.js';
import { Entry } from '../../../src/dpm/log-entry.js';
import { mergeChainThrough } from '../../../src/dpm/merge.js';
import { recoverRegion, sealChain } from '../../../src/dpm/recovery.js';
import type { Region } from '../../../src/dpm/region.js';
import { FakeKn, makeRegion } from './dpm-test-kit.js';

function commitOf(
  region: Region,
  block: number,
): { bytes: number; count: number; sealed: boolean } {
  const word = BigInt.asUintN(64, Atomics.load(region.i64, (block + Block.commitWord) / 8));
  const info = Number(word >> 32n);
  return {
    bytes: Number(word & 0xffff_ffffn),
    count: info & ~commitSealedBit,
    sealed: (info & commitSealedBit) !== 0,
  };
}

function setup(): { region: Region; kn: FakeKn; first: number; second: number } {
  const region = makeRegion({ blockBytes: 4096, blocks: 8 });
  const allocator = new BlockAllocator(region);
  const kn = new FakeKn(region, (rank) => allocator.allocate(rank), 0);
  const first = kn.put('a', 'value-a', 1, 1);
  const second = kn.put('b', 'value-b', 1, 2);
  kn.commit();
  return { region, kn, first, second };
}

describe('recoverRegion', () => {
  it('keeps intact committed entries and seals the block', () => {
    const { region, kn } = setup();
    const before = commitOf(region, kn.block);
    const report = recoverRegion(region);
    expect(report.tornBlocks).toBe(0);
    expect(report.blocksSealed).toBe(1);
    expect(commitOf(region, kn.block)).toEqual({ ...before, sealed: true });
  });

  it('cuts the commit offset back to the last entry that passes its checksum', () => {
    const { region, kn, second } = setup();
    // A torn word in the second entry's value: the commit word survived, one data word did not.
    region.bytes[second + Entry.key + 2] = 0;
    const report = recoverRegion(region);
    expect(report.tornBlocks).toBe(1);
    expect(commitOf(region, kn.block)).toEqual({
      bytes: second - kn.block,
      count: 1,
      sealed: true,
    });
    // The merge then takes exactly the intact entry.
    expect(mergeChainThrough(region, 0).applied).toBe(1);
  });

  it('under the acceptTornEntries mutant keeps the torn commit offset', () => {
    const { region, kn, second } = setup();
    const before = commitOf(region, kn.block);
    region.bytes[second + Entry.key + 2] = 0;
    expect(recoverRegion(region, { acceptTornEntries: true }).tornBlocks).toBe(0);
    expect(commitOf(region, kn.block)).toEqual({ ...before, sealed: true });
  });

  it('sealChain seals every block of a chain once', () => {
    const { region } = setup();
    expect(sealChain(region, 0)).toBe(1);
    expect(sealChain(region, 0)).toBe(0);
  });
});
