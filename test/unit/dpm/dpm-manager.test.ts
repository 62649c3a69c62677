import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { isDinomoError } from '../../../src/errors/index.js';
import { DpmManagerCore } from '../../../src/dpm/dpm-manager-core.js';
import { DpmManagerService } from '../../../src/dpm/dpm-manager-service.js';
import type { DpmToKnMessage } from '../../../src/dpm/dpm-protocol.js';
import { Block, BlockState, lsnOf } from '../../../src/dpm/layout.js';
import { Entry, EntryFlag, EntryOp } from '../../../src/dpm/log-entry.js';
import { mergeChain, type MergeResult } from '../../../src/dpm/merge.js';
import { loadU32, type Region } from '../../../src/dpm/region.js';
import { FakeKn, makeRegion } from './dpm-test-kit.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return isDinomoError(err) ? err.code : String(err);
  }
  return 'no error';
}

/** Runs every merge the core asks for, inline, until no chain needs one. */
function drain(region: Region, core: DpmManagerCore<string>): string[] {
  const satisfied: string[] = [];
  for (let round = 0; round < 100; round++) {
    const ranks = core.chainsNeedingMerge();
    if (ranks.length === 0) return satisfied;
    for (const rank of ranks) {
      core.startMerge(rank);
      const report = core.onMergeResult(rank, mergeChain(region, rank, 3));
      satisfied.push(...report.satisfied.map((s) => s.token));
    }
  }
  throw new Error('merges did not converge');
}

describe('DpmManagerCore', () => {
  it('allocates blocks and settles merge waits as merges progress', () => {
    const region = makeRegion({ chains: 2, blocks: 4 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 10 });
    const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 1);
    expect(core.chainsNeedingMerge()).toEqual([]);
    for (let i = 0; i < 8; i++) kn.put(`k${i}`, 'v', 1, i + 1);
    kn.commit();
    const target = lsnOf(kn.blockSeq, kn.committedBytes);
    expect(core.waitMerged(1, lsnOf(kn.blockSeq, Block.headerBytes), 'already')).not.toBeNull();
    expect(core.waitMerged(1, target, 'w1')).toBeNull();
    expect(core.waitMerged(1, target + 1, 'w-later')).toBeNull();
    expect(core.chainsNeedingMerge()).toEqual([1]);
    core.startMerge(1);
    expect(core.chainsNeedingMerge()).toEqual([]); // one task per chain
    expect(core.onMergeResult(1, mergeChain(region, 1, 3)).satisfied).toEqual([]);
    expect(drain(region, core)).toEqual(['w1']);
    expect(core.stats().merges).toMatchObject({ pendingWaiters: 1, entriesMerged: 8, running: 0 });
    // The later waiter is settled once more is committed and merged.
    kn.put('more', 'v', 1, 100);
    kn.commit();
    expect(drain(region, core)).toEqual(['w-later']);
    expect(core.stats().merges.pendingWaiters).toBe(0);
  });

  it("creates a clover key once, and only from a committed linked entry of the asker's chain", () => {
    const region = makeRegion({ chains: 2, blocks: 4 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 10 });
    const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 1);
    const value = new TextEncoder().encode('v');
    const first = kn.append(EntryOp.put, 'k', value, 1, 1, EntryFlag.linked);
    const second = kn.append(EntryOp.put, 'k', value, 1, 2, EntryFlag.linked);
    const plain = kn.append(EntryOp.put, 'p', value, 1, 3);
    // Staged, not committed yet: refused.
    expect(codeOf(() => core.createLinked(1, undefined, first))).toBe('INVALID_OPTION');
    kn.commit();
    expect(core.createLinked(1, undefined, first)).toBe(first);
    expect(core.createLinked(1, undefined, second)).toBe(first);
    expect(codeOf(() => core.createLinked(1, undefined, plain))).toBe('INVALID_OPTION');
    expect(codeOf(() => core.createLinked(0, undefined, second))).toBe('INVALID_OPTION');
    expect(codeOf(() => core.createLinked(1, undefined, first + 8))).toBe('INVALID_OPTION');
    expect(codeOf(() => core.createLinked(1, undefined, 3))).toBe('INVALID_OPTION');
    expect(codeOf(() => core.createLinked(7, undefined, first))).toBe('INVALID_OPTION');
  });

  it('creates a clover key from a block the merge already retired from the chain', () => {
    // The create request of a write can arrive after the merge passed its sealed block: merging a
    // linked entry pins its block, so the block is still the chain's and is never reused.
    const region = makeRegion({ chains: 2, blocks: 4 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 10 });
    const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 1);
    const first = kn.append(
      EntryOp.put,
      'k',
      new TextEncoder().encode('v'),
      1,
      1,
      EntryFlag.linked,
    );
    kn.commit();
    kn.seal();
    (kn as unknown as { nextBlock(): void }).nextBlock();
    kn.put('other', 'v', 1, 2);
    kn.commit();
    while (mergeChain(region, 1, 100).applied > 0);
    const g = region.geometry;
    const block = first - ((first - g.blocksOffset) % g.blockBytes);
    expect(loadU32(region, block + Block.state)).toBe(BlockState.merged);
    expect(loadU32(region, block + Block.pinned)).toBe(1);
    expect(core.createLinked(1, undefined, first)).toBe(first);
    expect(codeOf(() => core.createLinked(0, undefined, first))).toBe('INVALID_OPTION');
  });

  it('returns the new block generation and sequence from alloc', () => {
    const region = makeRegion({ chains: 1, blocks: 2 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 1 });
    expect(core.alloc(0)).toMatchObject({ generation: 1, blockSeq: 0 });
    expect(core.alloc(0)).toMatchObject({ generation: 1, blockSeq: 1 });
    expect(codeOf(() => core.alloc(0))).toBe('REGION_FULL');
    expect(core.stats().space.blocksFree).toBe(0);
  });

  it('bounds pending waits with OVERLOADED and validates requests', () => {
    const region = makeRegion({ chains: 1, blocks: 2 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 2 });
    core.waitMerged(0, 1e6, 'a');
    core.waitMerged(0, 1e6, 'b');
    expect(codeOf(() => core.waitMerged(0, 1e6, 'c'))).toBe('OVERLOADED');
    expect(codeOf(() => core.waitMerged(5, 1, 'd'))).toBe('INVALID_OPTION');
    expect(codeOf(() => core.waitMerged(0, -1, 'e'))).toBe('INVALID_OPTION');
    const closed = core.failAllWaiters({ code: 'CLOSED', message: 'stop' });
    expect(closed.failed.map((f) => f.token)).toEqual(['a', 'b']);
  });

  it('fails the waits of a corrupt chain and stops scheduling it', () => {
    const region = makeRegion({ chains: 1, blocks: 2 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 4 });
    const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 0);
    kn.put('a', '1', 1, 1);
    const bad = kn.put('b', '2', 1, 2);
    kn.commit();
    region.bytes[bad + Entry.key] = 0x7a;
    core.waitMerged(0, lsnOf(kn.blockSeq, kn.committedBytes), 'w');
    core.startMerge(0);
    const report = core.onMergeResult(0, mergeChain(region, 0, 10));
    expect(report.failed).toMatchObject([{ token: 'w', error: { code: 'CORRUPT' } }]);
    expect(core.chainsNeedingMerge()).toEqual([]);
    expect(core.stats().merges.corruptChains).toEqual([0]);
    expect(codeOf(() => core.waitMerged(0, 1e9, 'x'))).toBe('CORRUPT');
  });

  it('does not loop on a chain whose merge was skipped until the periodic tick', () => {
    const region = makeRegion({ chains: 1, blocks: 2 });
    const core = new DpmManagerCore<string>(region, { maxWaiters: 4 });
    const kn = new FakeKn(region, (rank) => core.alloc(rank).blockOffset, 0);
    kn.put('a', '1', 1, 1);
    kn.commit();
    core.startMerge(0);
    const skipped: MergeResult = {
      applied: 0,
      mergedLsn: 0,
      freedBlocks: [],
      reachedCommit: false,
      skipped: true,
      indexFull: false,
      corruption: null,
    };
    core.onMergeResult(0, skipped);
    expect(core.chainsNeedingMerge()).toEqual([]);
    core.clearStalled();
    expect(core.chainsNeedingMerge()).toEqual([0]);
  });
});

describe('DpmManagerService', () => {
  function request(port: MessagePort, msg: unknown): Promise<DpmToKnMessage> {
    return new Promise((resolve) => {
      port.once('message', (reply: DpmToKnMessage) => resolve(reply));
      port.postMessage(msg);
    });
  }

  it('serves alloc and wait-merged over a port and merges until caught up', async () => {
    const region = makeRegion({ chains: 1, blocks: 3 });
    const service = new DpmManagerService(region, {
      runMerge: (rank, maxEntries) => Promise.resolve(mergeChain(region, rank, maxEntries)),
      maxWaiters: 8,
      mergeBatchEntries: 2,
      maxConcurrentMerges: 1,
    });
    const { port1, port2 } = new MessageChannel();
    service.attach(port1);
    const alloc = await request(port2, { type: 'alloc', id: 1, rank: 0 });
    expect(alloc).toMatchObject({ type: 'alloc-ok', id: 1, generation: 1, blockSeq: 0 });
    const block = alloc.type === 'alloc-ok' ? alloc.blockOffset : 0;
    const kn = new FakeKn(region, () => block, 0);
    for (let i = 0; i < 9; i++) kn.put(`k${i}`, 'v', 1, i + 1);
    kn.commit();
    const target = lsnOf(kn.blockSeq, kn.committedBytes);
    const merged = await request(port2, { type: 'wait-merged', id: 2, rank: 0, lsn: target });
    expect(merged).toEqual({ type: 'merged', id: 2, mergedLsn: target });
    expect(service.core.stats().merges.tasksRun).toBeGreaterThanOrEqual(5);
    const bad = await request(port2, { type: 'alloc', id: 3, rank: 9 });
    expect(bad).toMatchObject({ type: 'error', id: 3, code: 'INVALID_OPTION' });
    const unknown = await request(port2, { type: 'nonsense', id: 4 });
    expect(unknown).toMatchObject({ type: 'error', id: 4, code: 'INTERNAL' });
    await service.stop();
    port2.close();
  });

  it('fails pending waits with CLOSED on stop', async () => {
    const region = makeRegion({ chains: 1, blocks: 2 });
    const service = new DpmManagerService(region, {
      runMerge: (rank, maxEntries) => Promise.resolve(mergeChain(region, rank, maxEntries)),
      maxWaiters: 8,
      mergeBatchEntries: 100,
      maxConcurrentMerges: 1,
    });
    const replies: DpmToKnMessage[] = [];
    const port = { postMessage: (msg: DpmToKnMessage) => replies.push(msg) };
    service.onKnMessage(port, { type: 'wait-merged', id: 7, rank: 0, lsn: 1e9 });
    expect(replies).toEqual([]);
    await service.stop();
    expect(replies).toMatchObject([{ type: 'error', id: 7, code: 'CLOSED' }]);
    service.onKnMessage(port, { type: 'alloc', id: 8, rank: 0 });
    expect(replies[1]).toMatchObject({ type: 'error', id: 8, code: 'CLOSED' });
  });

  it('fails a KN thread over: fences it, cuts a torn tail, merges its chain, refuses its blocks', async () => {
    const region = makeRegion({ chains: 2, blocks: 6 });
    const service = new DpmManagerService(region, {
      runMerge: (rank, maxEntries) => Promise.resolve(mergeChain(region, rank, maxEntries)),
      maxWaiters: 8,
      mergeBatchEntries: 2,
      maxConcurrentMerges: 1,
    });
    const { port1, port2 } = new MessageChannel();
    service.attach(port1);
    const alloc = await request(port2, { type: 'alloc', id: 1, rank: 1, incarnation: 0 });
    const block = alloc.type === 'alloc-ok' ? alloc.blockOffset : 0;
    const kn = new FakeKn(region, () => block, 1);
    for (let i = 0; i < 5; i++) kn.put(`k${i}`, 'v', 1, i + 1);
    kn.commit();
    const good = kn.committedBytes;
    // A batch whose commit word landed but whose last entry did not (a torn tail).
    kn.put('torn', 'x', 1, 6);
    kn.commit();
    region.bytes[block + good + Entry.key] = 0xff - (region.bytes[block + good + Entry.key] ?? 0);
    const over = await request(port2, { type: 'failover', id: 2, rank: 1, incarnation: 0 });
    expect(over).toEqual({
      type: 'failed-over',
      id: 2,
      mergedLsn: lsnOf(kn.blockSeq, good),
      incarnation: 1,
    });
    expect(service.core.stats().merges.entriesMerged).toBe(5);
    const fenced = await request(port2, { type: 'reopen', id: 3, rank: 1, incarnation: 0 });
    expect(fenced).toMatchObject({ type: 'error', id: 3, code: 'FENCED' });
    const restarted = await request(port2, { type: 'reopen', id: 4, rank: 1, incarnation: 1 });
    expect(restarted).toMatchObject({ type: 'alloc-ok', id: 4 });
    // Asking again for the same incarnation changes nothing (its restart keeps writing).
    const again = await request(port2, { type: 'failover', id: 5, rank: 1, incarnation: 0 });
    expect(again).toMatchObject({ type: 'failed-over', id: 5, incarnation: 1 });
    await service.stop();
    port2.close();
  });
});
