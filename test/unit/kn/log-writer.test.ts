import { describe, expect, it } from 'vitest';
import { Block, commitSealedBit } from '../../../src/dpm/layout.js';
import {
  EntryOp,
  entryBytes,
  entryIsValid,
  newEntryHeader,
  readEntryHeader,
} from '../../../src/dpm/log-entry.js';
import { LocalFabric } from '../../../src/fabric/index.js';
import type { DpmControl } from '../../../src/kn/dpm-control.js';
import { LogWriter } from '../../../src/kn/log-writer.js';

const blockBytes = 2 * 1024 * 1024;
const base = 4096;

/** A fake manager: blocks at fixed offsets with minimal headers, and merge waits the test releases. */
class FakeDpm implements DpmControl {
  allocated: number[] = [];
  mergeWaits: Array<{ lsn: number; release: () => void }> = [];
  constructor(private readonly region: SharedArrayBuffer) {}
  allocBlock(rank: number): Promise<number> {
    const seq = this.allocated.length;
    const offset = base + seq * blockBytes;
    const v = new DataView(this.region);
    v.setUint32(offset + Block.chainRank, rank, true);
    v.setUint32(offset + Block.generation, 10 + seq, true);
    v.setUint32(offset + Block.blockSeq, seq, true);
    this.allocated.push(offset);
    return Promise.resolve(offset);
  }
  reopenChain(rank: number): Promise<number> {
    return this.allocBlock(rank);
  }
  waitMerged(_rank: number, lsn: number): Promise<number> {
    return new Promise((resolve) => this.mergeWaits.push({ lsn, release: () => resolve(lsn) }));
  }
  createLinked(): Promise<number> {
    return Promise.reject(new Error('the log writer never creates keys'));
  }

  scanPartitions(): Promise<never> {
    return Promise.reject(new Error('the log writer never scans partitions'));
  }
}

function setup(recentBlocks = 1) {
  const region = new SharedArrayBuffer(base + 8 * blockBytes);
  const fabric = new LocalFabric(region);
  const dpm = new FakeDpm(region);
  const retired: number[] = [];
  let doorbells = 0;
  const log = new LogWriter(fabric, dpm, {
    rank: 3,
    blockBytes,
    recentBlocks,
    ringDoorbell: () => doorbells++,
    onMirrorRetired: (lsn) => retired.push(lsn),
  });
  return { region, fabric, dpm, log, retired, doorbells: () => doorbells };
}

const commitWord = (region: SharedArrayBuffer, block: number): bigint =>
  new DataView(region).getBigUint64(block + Block.commitWord, true);

describe('LogWriter', () => {
  it('commits a batch with one data write and one commit-word write', async () => {
    const { region, fabric, dpm, log, doorbells } = setup();
    await log.start();
    const first = dpm.allocated[0] as number;
    const key = Buffer.from('k');
    const at1 = log.append(EntryOp.put, key, Buffer.from('v1'), 1, 1);
    const at2 = log.append(EntryOp.delete, key, null, 1, 2);
    expect(commitWord(region, first)).toBe(0n); // Nothing is committed before commit().
    const rtsBefore = fabric.counters.rts;
    log.commit();
    expect(fabric.counters.rts - rtsBefore).toBe(2);
    expect(doorbells()).toBe(1);
    const end = at2 + entryBytes(1, 0);
    expect(commitWord(region, first)).toBe((2n << 32n) | BigInt(end));
    const bytes = new Uint8Array(region);
    const view = new DataView(region);
    expect(entryIsValid(bytes, view, first + at1, first + end)).toBe(true);
    const h = readEntryHeader(view, first + at2, newEntryHeader());
    expect([h.op, h.seq, h.generation]).toEqual([EntryOp.delete, 2, 10]);
  });

  it('seals the old block on a switch and moves to the prefetched one', async () => {
    const { region, dpm, log } = setup();
    await log.start();
    log.append(EntryOp.put, Buffer.from('a'), Buffer.from('1'), 1, 1);
    log.commit();
    await log.switchBlock();
    const [first, second] = dpm.allocated as [number, number];
    expect((Number(commitWord(region, first) >> 32n) & commitSealedBit) >>> 0).toBe(
      commitSealedBit,
    );
    expect(log.currentBlockOffset).toBe(second);
    expect(log.blockGeneration).toBe(11);
    expect(log.lsnAt(64)).toBe(1 * 2 ** 32 + 64);
  });

  it('waits for the merge of the oldest kept block (back-pressure) and retires its records', async () => {
    const { dpm, log, retired } = setup(1);
    await log.start();
    await log.switchBlock(); // Keeps block 0's mirror: 1 kept, allowed.
    expect(log.mustWaitForMerge).toBe(true);
    const switching = log.switchBlock(); // Would keep 2: must wait for block 0's merge.
    await new Promise((r) => setImmediate(r));
    expect(dpm.mergeWaits.map((w) => w.lsn)).toEqual([1 * 2 ** 32]);
    expect(retired).toEqual([]);
    dpm.mergeWaits[0]?.release();
    await switching;
    expect(retired).toEqual([1 * 2 ** 32]);
  });

  it('abandons a block whose commit failed and never writes to it again', async () => {
    const { region, dpm, log, retired } = setup();
    await log.start();
    const first = dpm.allocated[0] as number;
    log.append(EntryOp.put, Buffer.from('a'), Buffer.from('1'), 1, 1);
    log.commit();
    const committed = commitWord(region, first);
    log.append(EntryOp.put, Buffer.from('b'), Buffer.from('2'), 1, 2);
    expect(log.abandonBlock()).toBe(1 * 2 ** 32);
    expect(log.stagedBytes).toBe(0);
    expect(log.fits(64)).toBe(false);
    log.commit();
    expect(commitWord(region, first)).toBe(committed);
    // The prefetched block (allocated[1]) is dropped; reopen asks for a fresh one.
    await log.reopen();
    expect(dpm.allocated).toHaveLength(4); // The fresh block, then its prefetched successor.
    expect(log.currentBlockOffset).toBe(dpm.allocated[2]);
    expect(log.mustWaitForMerge).toBe(true);
    log.releaseMergedThrough(1 * 2 ** 32);
    expect(log.mustWaitForMerge).toBe(false);
    expect(retired).toEqual([1 * 2 ** 32]);
    expect(commitWord(region, first)).toBe(committed);
  });

  it('refuses appends when the block is full (fits() is false)', async () => {
    const { log } = setup();
    await log.start();
    expect(log.fits(blockBytes - 64)).toBe(true);
    expect(log.fits(blockBytes - 63)).toBe(false);
  });
});
