import { describe, expect, it } from 'vitest';
import { Block } from '../../../src/dpm/layout.js';
import { LocalFabric } from '../../../src/fabric/index.js';
import { Dac } from '../../../src/kn/dac.js';
import type { DpmControl } from '../../../src/kn/dpm-control.js';
import { KnThread, type IndexLookup } from '../../../src/kn/kn-thread.js';
import { threadStatSlots } from '../../../src/kn/thread-stats.js';
import { BatchWriter, WireOp, WireStatus, readResponses } from '../../../src/kn/wire.js';
import type { Clock } from '../../../src/time/index.js';
import { DinomoError } from '../../../src/errors/index.js';

const blockBytes = 64 * 1024;
const base = 4096;

/**
 * A fake manager whose reopen (the first block a thread takes) is answered only when the test says
 * so, while allocations are answered at once, as when a restarted thread's start is slow.
 */
class SlowReopenDpm implements DpmControl {
  /** Every block handed out, in order, and whether it came from reopen. */
  readonly blocks: Array<{ offset: number; reopen: boolean }> = [];
  private answerReopen: (() => void) | null = null;
  constructor(private readonly region: SharedArrayBuffer) {}
  allocBlock(rank: number): Promise<number> {
    return Promise.resolve(this.link(rank, false));
  }
  reopenChain(rank: number): Promise<number> {
    return new Promise((resolve) => {
      this.answerReopen = () => resolve(this.link(rank, true));
    });
  }
  waitMerged(_rank: number, lsn: number): Promise<number> {
    return Promise.resolve(lsn);
  }
  createLinked(): Promise<number> {
    return Promise.reject(new Error('not used in DINOMO mode'));
  }
  scanPartitions(): Promise<never> {
    return Promise.reject(new Error('not used in DINOMO mode'));
  }
  releaseReopen(): void {
    this.answerReopen?.();
  }
  private link(rank: number, reopen: boolean): number {
    const seq = this.blocks.length;
    const offset = base + seq * blockBytes;
    const v = new DataView(this.region);
    v.setUint32(offset + Block.chainRank, rank, true);
    v.setUint32(offset + Block.generation, 1, true);
    v.setUint32(offset + Block.blockSeq, seq, true);
    this.blocks.push({ offset, reopen });
    return offset;
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A manager that answers reopens at once and serves every allocation, but whose answer to the first
 * `lostAllocs` allocations is lost: the KN sees TIMEOUT for a block the DPM linked all the same.
 */
class LostAllocDpm extends SlowReopenDpm {
  reopens = 0;
  constructor(
    region: SharedArrayBuffer,
    private lostAllocs: number,
  ) {
    super(region);
  }
  override allocBlock(rank: number): Promise<number> {
    const served = super.allocBlock(rank);
    if (this.lostAllocs === 0) return served;
    this.lostAllocs--;
    return served.then(() => {
      throw new DinomoError('TIMEOUT', 'the DPM manager did not answer in time');
    });
  }
  override reopenChain(rank: number): Promise<number> {
    this.reopens++;
    const reopened = super.reopenChain(rank);
    this.releaseReopen();
    return reopened;
  }
}

type Answer = { id: number; status: number; code: string | null };

function makeThread(region: SharedArrayBuffer, dpm: DpmControl, answers: Answer[]): KnThread {
  const index: IndexLookup = {
    lookup: () => false,
    entryOffset: 0,
    entryBytes: 0,
    generation: 0,
    value: new Uint8Array(0),
    op: 0,
    link: 0,
  };
  const clock: Clock = {
    nowUs: () => 0,
    setTimer: (_us, fn) => {
      const t = setImmediate(fn);
      return { cancel: () => clearImmediate(t) };
    },
  };
  return new KnThread(
    {
      fabric: new LocalFabric(region),
      dpm,
      clock,
      dac: new Dac({ capacityBytes: 0 }),
      index,
      stats: new Float64Array(threadStatSlots),
      ownedSlots: new Uint8Array(16384).fill(1),
      send: (batch) =>
        void readResponses(batch, (id, status, _payload, code) =>
          answers.push({ id, status, code }),
        ),
      ringDoorbell: () => undefined,
    },
    {
      rank: 2,
      epoch: 1,
      blockBytes,
      recentBlocks: 2,
      groupCommitUs: 10,
      groupCommitBytes: 1,
      inflightMax: 64,
      reconnectRetryUs: 1,
    },
  );
}

describe('KnThread start', () => {
  it('serves a request that arrives during start in the block start took, after start', async () => {
    const region = new SharedArrayBuffer(base + 8 * blockBytes);
    const dpm = new SlowReopenDpm(region);
    const answers: Answer[] = [];
    const thread = makeThread(region, dpm, answers);
    const started = thread.start();
    const w = new BatchWriter();
    w.addRequest(WireOp.put, 1, Buffer.from('k'), Buffer.from('v'));
    thread.enqueue(w.take());
    await settle();
    // Before its first block, the thread neither answers nor takes a block of its own: one it took
    // would be linked behind the one start is given, which would stay empty and unsealed for good.
    expect(answers).toEqual([]);
    expect(dpm.blocks).toEqual([]);
    dpm.releaseReopen();
    await started;
    await thread.quiesce();
    expect(answers).toEqual([{ id: 1, status: WireStatus.ok, code: null }]);
    const first = dpm.blocks[0];
    expect(first?.reopen).toBe(true);
    const commitBytes = new DataView(region).getUint32(
      (first?.offset ?? 0) + Block.commitBytes,
      true,
    );
    expect(commitBytes).toBeGreaterThan(Block.headerBytes);
  });

  it('reopens its chain after a block request timed out, so a block linked meanwhile is sealed', async () => {
    const region = new SharedArrayBuffer(base + 16 * blockBytes);
    const dpm = new LostAllocDpm(region, 1);
    const answers: Answer[] = [];
    const thread = makeThread(region, dpm, answers);
    await thread.start();
    expect(dpm.reopens).toBe(1);
    // Each value fills most of a block, so the second put switches to the prefetched block, whose
    // answer was lost.
    const value = Buffer.alloc(blockBytes - 4096, 1);
    for (let id = 1; id <= 3; id++) {
      const w = new BatchWriter();
      w.addRequest(WireOp.put, id, Buffer.from(`k${id}`), value);
      thread.enqueue(w.take());
      await thread.quiesce();
    }
    for (let i = 0; i < 20 && dpm.reopens < 2; i++) await settle();
    expect(answers.map((a) => a.code)).toContain('TIMEOUT');
    expect(dpm.reopens).toBe(2);
  });
});
