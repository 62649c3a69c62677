import { Block, commitSealedBit, lsnOf } from '../dpm/layout.js';
import { writeEntry, type EntryOpCode } from '../dpm/log-entry.js';
import type { Fabric } from '../fabric/index.js';
import { assert } from '../util/assert.js';
import type { DpmControl } from './dpm-control.js';

export interface LogWriterOptions {
  rank: number;
  blockBytes: number;
  /** Sealed blocks whose mirrors are kept until the DPM merged them. */
  recentBlocks: number;
  /** Called after each commit so DPM-side mergers wake up (in process: a futex doorbell). */
  ringDoorbell: () => void;
  /** Called before a mirror is reused: records below this LSN must be forgotten. */
  onMirrorRetired: (lsnEnd: number) => void;
}

interface Mirror {
  bytes: Uint8Array;
  view: DataView;
  blockSeq: number;
}

/**
 * A KN thread's log: it stages entries in a local mirror of its current DPM log block and commits a
 * batch with two one-sided writes: the entry bytes, then the block's 8-byte commit word (commit
 * bytes | entry count, sealed bit). Only after the second write is a batch committed (DESIGN.md
 * section 5, "Write"); the original wrote 28 header bytes instead and clobbered DPM-side counters
 * (bug 3), and in its non-batching mode acked before the commit offset was written (bug 2).
 *
 * Mirrors of sealed blocks are kept until the DPM confirms their merge, so the thread can answer
 * reads of its own unmerged writes locally; when more than `recentBlocks` are waiting, switching
 * blocks waits for the merge (back-pressure: a thread can never run unboundedly ahead of the DPM).
 */
export class LogWriter {
  private readonly fabric: Fabric;
  private readonly dpm: DpmControl;
  private readonly options: LogWriterOptions;
  private readonly spare: Mirror[] = [];
  private readonly retained: Mirror[] = [];
  private current: Mirror | null = null;
  private blockOffset = 0;
  private generation = 0;
  private batchStart = Block.headerBytes;
  private appendAt = Block.headerBytes;
  private entryCount = 0;
  private nextBlock: Promise<number> | null = null;
  private committedLsnValue = 0;
  private readonly header = new Uint8Array(Block.headerBytes);
  private readonly headerView = new DataView(this.header.buffer);

  constructor(fabric: Fabric, dpm: DpmControl, options: LogWriterOptions) {
    this.fabric = fabric;
    this.dpm = dpm;
    this.options = options;
  }

  /**
   * Takes the first block: the DPM seals whatever the chain holds (from an earlier incarnation of
   * this rank, which is never zeroed: the original dropped those unmerged entries, its bug 9) and
   * links a fresh tail. Returns the LSN where this incarnation's log starts; once the chain is merged
   * up to it, the index holds every write of earlier incarnations.
   */
  async start(): Promise<number> {
    await this.enterBlock(await this.dpm.reopenChain(this.options.rank));
    return lsnOf(this.currentMirror().blockSeq, 0);
  }

  get stagedBytes(): number {
    return this.appendAt - this.batchStart;
  }

  get blockGeneration(): number {
    return this.generation;
  }

  get currentBlockOffset(): number {
    return this.blockOffset;
  }

  fits(entryBytes: number): boolean {
    return this.current !== null && this.appendAt + entryBytes <= this.options.blockBytes;
  }

  /** Stages one entry; the caller checked `fits`. Returns the entry's offset in the block. */
  append(
    op: EntryOpCode,
    key: Uint8Array,
    value: Uint8Array | null,
    epoch: number,
    seq: number,
    flags = 0,
  ): number {
    const mirror = this.currentMirror();
    const at = this.appendAt;
    this.appendAt += writeEntry(
      mirror.bytes,
      mirror.view,
      at,
      op,
      key,
      value,
      this.generation,
      epoch,
      seq,
      flags,
    );
    this.entryCount++;
    return at;
  }

  /** The LSN just past everything committed so far (merging through it settles every write). */
  get committedLsn(): number {
    return this.committedLsnValue;
  }

  lsnAt(at: number): number {
    return lsnOf(this.currentMirror().blockSeq, at);
  }

  get mirrorBytes(): Uint8Array {
    return this.currentMirror().bytes;
  }

  get mirrorView(): DataView {
    return this.currentMirror().view;
  }

  /**
   * Writes the staged batch, then the commit word, then persists both (one flush for the pair: a
   * crash before it completes may keep the commit word without some entries, which recovery detects
   * by checksum and drops; nothing in such a batch was acknowledged). After this returns, the batch
   * is committed and durable. If it throws, the block's tail is in an unknown state: the caller must
   * abandon the block (abandonBlock) and never write to it again.
   */
  commit(sealed = false): void {
    if (this.current === null) return;
    const staged = this.appendAt - this.batchStart;
    if (staged > 0) {
      this.fabric.write(
        this.blockOffset + this.batchStart,
        this.currentMirror().bytes,
        this.batchStart,
        staged,
      );
    }
    if (staged > 0 || sealed) {
      const info = (this.entryCount | (sealed ? commitSealedBit : 0)) >>> 0;
      this.fabric.write64(
        this.blockOffset + Block.commitWord,
        (BigInt(info) << 32n) | BigInt(this.appendAt),
      );
      this.fabric.persist();
      this.batchStart = this.appendAt;
      this.committedLsnValue = lsnOf(this.currentMirror().blockSeq, this.appendAt);
      this.options.ringDoorbell();
    }
  }

  /**
   * Gives up the current block after a failed commit or a lost connection. Its tail is in an unknown
   * state (the commit word may or may not have landed), so nothing is written to it again; the DPM
   * seals it (recovery after a restart, or `reopen`). Its mirror is kept like a sealed block's until
   * the DPM has merged it, so this thread's committed writes in it stay readable. The prefetched next
   * block is dropped too: it may come from the DPM's previous incarnation. Returns the LSN just past
   * the abandoned block (merging through it settles every entry ever written to it), or null when
   * there was no current block.
   */
  abandonBlock(): number | null {
    this.nextBlock = null;
    const mirror = this.current;
    this.current = null;
    this.batchStart = Block.headerBytes;
    this.appendAt = Block.headerBytes;
    this.entryCount = 0;
    if (mirror === null) return null;
    this.retained.push(mirror);
    return lsnOf(mirror.blockSeq + 1, 0);
  }

  /**
   * After abandonBlock and a reconnect: has the DPM seal every block of this chain and link a fresh
   * one, and continues there. Mirrors of abandoned blocks stay retained until their merge.
   */
  async reopen(): Promise<void> {
    assert(this.current === null, 'abandon the current block before reopening the chain');
    await this.enterBlock(await this.dpm.reopenChain(this.options.rank));
  }

  /** Forgets the mirrors of blocks merged below `lsnEnd` (the DPM confirmed the merge). */
  releaseMergedThrough(lsnEnd: number): void {
    while (this.retained.length > 0) {
      const oldest = this.retained[0] as Mirror;
      if (lsnOf(oldest.blockSeq + 1, 0) > lsnEnd) break;
      this.retained.shift();
      this.spare.push(oldest);
    }
    this.options.onMirrorRetired(lsnEnd);
  }

  /**
   * Seals the current block (its batch must be committed) and moves to the next one, waiting for the
   * DPM to merge the oldest kept mirror when more than `recentBlocks` are kept.
   */
  async switchBlock(): Promise<void> {
    assert(this.stagedBytes === 0, 'commit the batch before switching blocks');
    if (this.current !== null) {
      this.commit(true);
      this.retained.push(this.current);
      this.current = null;
    }
    // From here on there is no current block until one arrives: if allocation fails (REGION_FULL),
    // `fits` stays false and the next write retries the switch.
    while (this.retained.length > this.options.recentBlocks) {
      const oldest = this.retained[0] as Mirror;
      const lsnEnd = lsnOf(oldest.blockSeq + 1, 0);
      await this.dpm.waitMerged(this.options.rank, lsnEnd);
      this.retained.shift();
      this.options.onMirrorRetired(lsnEnd);
      this.spare.push(oldest);
    }
    const next = this.nextBlock ?? this.dpm.allocBlock(this.options.rank);
    this.nextBlock = null;
    await this.enterBlock(await next);
  }

  /** True when a back-pressure wait will be needed at the next switch. */
  get mustWaitForMerge(): boolean {
    return this.retained.length >= this.options.recentBlocks;
  }

  private async enterBlock(blockOffset: number): Promise<void> {
    // Entering a block while another is current would leave that one linked in the chain but never
    // sealed: the merge stops at it for good (two concurrent block requests, such as a write's
    // switch during start, would do it).
    assert(this.current === null, 'a log block is entered only when there is no current one');
    this.fabric.read(blockOffset, Block.headerBytes, this.header);
    const v = this.headerView;
    assert(
      v.getUint32(Block.chainRank, true) === this.options.rank,
      'the block belongs to this chain',
    );
    this.blockOffset = blockOffset;
    this.generation = v.getUint32(Block.generation, true);
    const blockSeq = v.getUint32(Block.blockSeq, true);
    const mirror = this.spare.pop() ?? newMirror(this.options.blockBytes);
    mirror.blockSeq = blockSeq;
    this.current = mirror;
    this.batchStart = Block.headerBytes;
    this.appendAt = Block.headerBytes;
    this.entryCount = 0;
    // Ask for the next block now, so a switch rarely waits for the manager.
    this.nextBlock = this.dpm.allocBlock(this.options.rank);
    // A rejected prefetch is reported when the switch awaits it; do not crash on it earlier.
    this.nextBlock.catch(() => undefined);
    await Promise.resolve();
  }

  private currentMirror(): Mirror {
    assert(this.current !== null, 'the log writer has a current block');
    return this.current;
  }
}

function newMirror(blockBytes: number): Mirror {
  const bytes = new Uint8Array(blockBytes);
  return { bytes, view: new DataView(bytes.buffer), blockSeq: 0 };
}
