import type { Mutants } from '../config/mutants.js';
import type { ClusterMode } from '../config/options.js';
import {
  Entry,
  EntryFlag,
  EntryOp,
  entryBytes,
  entryIsValid,
  entryKeyEquals,
  entrySpan,
  entrySpanAt,
} from '../dpm/log-entry.js';
import type { PartitionScanPage } from '../dpm/dpm-manager-core.js';
import { partitionedKeyBytesMax, slotOfTaggedKey, tagKey } from '../dpm/partition-key.js';
import { DinomoError, isDinomoError, toWireError, type ErrorCode } from '../errors/index.js';
import type { Fabric } from '../fabric/index.js';
import { slotOfKey } from '../routing/index.js';
import type { Clock, TimerHandle } from '../time/index.js';
import { assert } from '../util/assert.js';
import { hashKey } from '../util/hash.js';
import type { ChainWalker } from './clover-chain.js';
import { DacHit, type Dac, type DacShortcut } from './dac.js';
import type { DpmControl } from './dpm-control.js';
import { LogWriter } from './log-writer.js';
import { PartitionCopier, copyPageKeys, type PartitionCopyHost } from './partition-copy.js';
import {
  RecentWrites,
  entryKey,
  entryKeyMatches,
  isTombstone,
  recordedValue,
} from './recent-writes.js';
import { ThreadStat, bump } from './thread-stats.js';
import { BatchWriter, RequestReader, WireOp, WireStatus } from './wire.js';

/** What the KN thread needs from the DPM index: a one-sided lookup of a key's newest entry. */
export interface IndexLookup {
  /** Finds the key's indexed entry (2 RT in the common case); false when absent. */
  lookup(key: Uint8Array, hash: number): boolean;
  /** After a successful lookup: the entry's region offset, padded size, block generation, value. */
  readonly entryOffset: number;
  readonly entryBytes: number;
  readonly generation: number;
  readonly value: Uint8Array;
  /** Clover mode: the entry's op (an indexed version may be a tombstone) and its link word. */
  readonly op: number;
  readonly link: number;
}

export interface KnThreadOptions {
  /**
   * 'clover': shared-everything baseline (docs/baselines.md): serve every key, no leases, versions
   * linked into per-key chains with a CAS before the ack. Needs `deps.chain`. 'dinomo-n': the
   * shared-nothing baseline: keys live in a private index partition per thread, and acquired slots
   * are copied from their previous owners' partitions before they are served. Default 'dinomo'.
   */
  mode?: ClusterMode;
  rank: number;
  epoch: number;
  blockBytes: number;
  recentBlocks: number;
  groupCommitUs: number;
  groupCommitBytes: number;
  /** Requests queued in this thread before new ones are refused with OVERLOADED. */
  inflightMax: number;
  /** Pause between attempts to reach the DPM again after losing the connection. */
  reconnectRetryUs?: number;
  /**
   * The thread serves only while its ownership lease is valid (DESIGN.md section 8, "Leases"): until
   * this clock time at first, then as far as `extendLease` moves it. Default: no lease needed (for
   * a cluster without an M-node failure detector, such as single-thread tests).
   */
  leaseUntilUs?: number;
  /** Deliberate protocol breaks for the linearizability suite (src/config/mutants.ts). */
  mutants?: Mutants;
}

export interface KnThreadDeps {
  fabric: Fabric;
  dpm: DpmControl;
  clock: Clock;
  dac: Dac;
  index: IndexLookup;
  /** This thread's counters (thread-stats.ts layout). */
  stats: Float64Array;
  /** Slot ownership of this thread (SlotState): owned, handing off, or not owned. */
  ownedSlots: Uint8Array;
  /** Delivers a response batch to the client side. */
  send: (responses: Uint8Array) => void;
  ringDoorbell: () => void;
  /** Clover mode's one-sided chain access (required when `options.mode` is 'clover'). */
  chain?: ChainWalker;
}

/**
 * Per-slot states in `ownedSlots`. `settling`: just acquired, while the previous owners' logs may
 * not be merged yet; the thread takes writes of the slot (they are newer than anything in those
 * logs) but answers reads and deletes only once it is `owned`.
 */
export const SlotState = { notOwned: 0, owned: 1, handingOff: 2, settling: 3 } as const;

/** A previous owner's chain that must be merged through `lsn` before a settling slot serves reads. */
export interface MergeFence {
  rank: number;
  lsn: number;
}

/** Where `locate` found a key's newest committed value. */
const Found = { none: 0, value: 1 } as const;

interface PendingWrite {
  requestId: number;
  op: number;
  hash: number;
  at: number;
  /** Already answered (only under the ackBeforeCommit mutant). */
  acked: boolean;
  /** Clover mode: whether the key existed just before this write was linked. */
  existed: boolean;
}

/** Clover mode: a committed write whose key had no version yet (see createAll). */
interface CreateWrite {
  requestId: number;
  op: number;
  hash: number;
  acked: boolean;
  key: Uint8Array;
  entryOffset: number;
  span: number;
  generation: number;
}

/** Clover mode: a write linked into its key's chain, waiting for the links' persist. */
interface LinkedWrite {
  requestId: number;
  op: number;
  acked: boolean;
  existed: boolean;
}

const EMPTY = new Uint8Array(0);

/** A key whose last write by this thread failed to commit: it may or may not be in the DPM. */
interface UncertainKey {
  key: Uint8Array;
  hash: number;
}

const defaultReconnectRetryUs = 1000;

/** A DPM request that failed because the DPM restarted or did not answer in time: try again. */
function isTransient(err: unknown): boolean {
  return isDinomoError(err) && (err.code === 'UNAVAILABLE' || err.code === 'TIMEOUT');
}

/**
 * One KN thread's request handling (DESIGN.md section 5). Single-threaded: the worker delivers
 * request batches, this class answers reads at once and acknowledges writes after group commit.
 *
 * Read order: DAC value (0 RT), this thread's own unmerged write (0 RT, newest version), DAC
 * shortcut (1 RT, validated), index lookup (2 RT). Writes are staged, committed as one batch
 * (entries, then commit word), and only then applied to the DAC and acknowledged.
 */
export class KnThread {
  private readonly deps: KnThreadDeps;
  private readonly options: KnThreadOptions;
  private readonly log: LogWriter;
  private readonly recent = new RecentWrites();
  private readonly reader = new RequestReader();
  private readonly out = new BatchWriter();
  private readonly queue: Uint8Array[] = [];
  private queuedRequests = 0;
  private draining = false;
  private idleWaiters: Array<() => void> = [];
  private pending: PendingWrite[] = [];
  private readonly sparePending: PendingWrite[] = [];
  private commitTimer: TimerHandle | null = null;
  private seq = 0;
  private scratch = new Uint8Array(4096);
  private scratchView = new DataView(this.scratch.buffer);
  private foundValue: Uint8Array = new Uint8Array(0);
  private readonly shortcut: DacShortcut = { entryOffset: 0, entryBytes: 0, generation: 0 };
  /** Set when a DPM access failed with UNAVAILABLE: requests wait until `recover` has run. */
  private connectionLost = false;
  /** The LSN just past the newest abandoned block, which recovery waits to see merged. */
  private settleLsn: number | null = null;
  private uncertain: UncertainKey[] = [];
  /** Control steps (slot handoff) run between request batches, never in the middle of one. */
  private readonly controls: Array<() => Promise<void>> = [];
  private epoch: number;
  private leaseUntilUs: number;
  /** The lease was valid when the current batch started (see process). */
  private leaseOk = true;
  /** Acquires waiting for previous owners' logs to be merged, by epoch (at most a few). */
  private readonly acquiring = new Map<number, Promise<void>>();
  /** Set once this incarnation was fenced or declared failed: it never serves again. */
  private retiredReason: string | null = null;
  /** Clover mode's chain walker, or null in DINOMO mode. */
  private readonly clover: ChainWalker | null;
  /** DINOMO-N mode: the copier of acquired slots, and the buffer for keys under this thread's tag. */
  private readonly copier: PartitionCopier | null;
  private readonly taggedKey = new Uint8Array(partitionedKeyBytesMax);
  /**
   * Set while `start` runs (it settles, never rejects, when start ends either way). The drain loop
   * waits for it before it handles anything: a write served meanwhile found no current block and
   * switched to one of its own, so the block `start` was given stayed linked, empty and unsealed
   * in front of it, and the merge (and every wait for it) stopped there for good.
   */
  private starting: Promise<void> | null = null;

  constructor(deps: KnThreadDeps, options: KnThreadOptions) {
    this.deps = deps;
    this.options = options;
    this.epoch = options.epoch;
    this.leaseUntilUs = options.leaseUntilUs ?? Number.POSITIVE_INFINITY;
    this.clover = options.mode === 'clover' ? (deps.chain ?? null) : null;
    assert(options.mode !== 'clover' || this.clover !== null, 'clover mode needs a chain walker');
    this.copier = options.mode === 'dinomo-n' ? new PartitionCopier(this.copyHost()) : null;
    this.log = new LogWriter(deps.fabric, deps.dpm, {
      rank: options.rank,
      blockBytes: options.blockBytes,
      recentBlocks: options.recentBlocks,
      ringDoorbell: deps.ringDoorbell,
      onMirrorRetired: (lsnEnd) => this.recent.dropBelow(lsnEnd),
    });
  }

  /**
   * Takes the first log block and, when this rank ran before (a restart with the same identity),
   * waits until the DPM merged everything the earlier incarnation committed, so reads through the
   * index see it. Requests and control steps that arrive meanwhile wait in the queue until it ends.
   */
  start(): Promise<void> {
    const started = this.openLog();
    const starting: Promise<void> = started
      .catch(() => undefined)
      .then(() => {
        if (this.starting === starting) this.starting = null;
      });
    this.starting = starting;
    return started;
  }

  private async openLog(): Promise<void> {
    const retryUs = this.options.reconnectRetryUs ?? defaultReconnectRetryUs;
    for (;;) {
      try {
        const startLsn = await this.log.start();
        await this.deps.dpm.waitMerged(this.options.rank, startLsn);
        return;
      } catch (err) {
        // The DPM restarted or did not answer in time: take a fresh block once it is back. A fenced
        // incarnation (or a bug) gives up.
        if (!isTransient(err)) throw err;
        this.log.abandonBlock();
        await this.sleepUs(retryUs);
        try {
          await this.deps.fabric.reconnect();
        } catch {
          // Still down: the next attempt fails fast and waits again.
        }
      }
    }
  }

  /** The M-node granted (or renewed) the lease until `untilUs` on the thread's clock. */
  extendLease(untilUs: number): void {
    if (untilUs > this.leaseUntilUs || this.leaseUntilUs === Number.POSITIVE_INFINITY) {
      this.leaseUntilUs = untilUs;
    }
  }

  private leaseValid(): boolean {
    if (this.options.mutants?.noFencing === true || this.clover !== null) return true;
    return this.deps.clock.nowUs() < this.leaseUntilUs;
  }

  /** Why the thread no longer serves (fenced, or declared failed), or null while it may. */
  get retired(): string | null {
    return this.retiredReason;
  }

  /**
   * This incarnation is finished (the M-node declared it failed, or the DPM fenced it): it gives up
   * every slot and its cache, fails its staged writes, and answers MOVED from now on, so clients go
   * to the new owners. Whatever it committed is merged by the failover.
   */
  retire(reason: string): void {
    if (this.retiredReason !== null) return;
    this.retiredReason = reason;
    this.deps.ownedSlots.fill(SlotState.notOwned);
    this.deps.dac.clear();
    this.recent.dropWhere(() => true);
    if (this.commitTimer !== null) {
      this.commitTimer.cancel();
      this.commitTimer = null;
    }
    const staged = this.pending;
    this.pending = [];
    // Staged writes were never written: refusing them with TRYAGAIN is exact, and the client
    // retries them at the slot's next owner.
    const why = `KN thread ${this.options.rank} retired (${reason}); retry at the new owner`;
    for (const p of staged) if (!p.acked) this.out.addError(p.requestId, 'TRYAGAIN', why);
    this.recycle(staged);
    this.flush();
  }

  /** Accepts one request batch (wire.ts format). Never throws: errors become error responses. */
  enqueue(batch: Uint8Array): void {
    const count =
      batch.length >= 4 ? new DataView(batch.buffer, batch.byteOffset).getUint32(0, true) : 0;
    if (this.queuedRequests + count > this.options.inflightMax) {
      this.refuse(
        batch,
        'OVERLOADED',
        `KN thread ${this.options.rank} has ${this.queuedRequests} requests queued`,
      );
      return;
    }
    this.queuedRequests += count;
    this.queue.push(batch);
    if (!this.draining) void this.drain();
  }

  /** Resolves when every queued request was handled and every staged write committed. */
  async quiesce(): Promise<void> {
    if (this.draining) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.commitNow();
    this.flush();
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      for (;;) {
        // Nothing runs before the first log block is taken (see `starting`); a drain that was already
        // running when `start` was called (requests that came first, in tests) stops here.
        while (this.starting !== null) await this.starting;
        if (this.connectionLost) await this.recover();
        const control = this.controls.shift();
        if (control !== undefined) {
          await control();
          continue;
        }
        const batch = this.queue.shift();
        if (batch === undefined) break;
        const startUs = this.deps.clock.nowUs();
        await this.process(batch);
        this.flush();
        bump(this.deps.stats, ThreadStat.busyUs, this.deps.clock.nowUs() - startUs);
      }
    } finally {
      this.draining = false;
      this.publishStats();
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  private async process(batch: Uint8Array): Promise<void> {
    const r = this.reader;
    r.reset(batch);
    // The lease is checked once per batch (a clock read per request costs throughput); a write that
    // waited for a block switch checks it again, since time passed.
    this.leaseOk = this.leaseValid();
    while (r.next()) {
      this.queuedRequests--;
      try {
        if (this.connectionLost && this.retiredReason === null) {
          throw new DinomoError(
            'UNAVAILABLE',
            `KN thread ${this.options.rank} lost its DPM connection and is reconnecting`,
          );
        } else if (!this.serves(r.key, r.op)) {
          this.refuseSlot(r.requestId, slotOfKey(r.key));
        } else if (!this.leaseOk) {
          // Without a valid lease the slot may already belong to another thread (this one may have
          // been paused past its lease and declared failed): serving from the cache could be stale.
          bump(this.deps.stats, ThreadStat.leaseRefusals);
          this.out.addError(
            r.requestId,
            'TRYAGAIN',
            `KN thread ${this.options.rank} has no valid lease right now`,
          );
        } else if (r.op === WireOp.get) {
          this.get(r.requestId, this.stored(r.key));
        } else if (r.op === WireOp.put) {
          const key = this.stored(r.key);
          await this.write(r.requestId, EntryOp.put, key, r.value, hashKey(key));
        } else {
          assert(r.op === WireOp.delete, 'known request op');
          await this.remove(r.requestId, this.stored(r.key));
        }
      } catch (err) {
        this.fail(r.requestId, err);
      }
    }
  }

  /**
   * Whether this thread takes request `op` on `key` now. Puts are taken while a slot settles, except
   * in DINOMO-N mode, where the slot's keys are being copied in (a copy would overwrite them).
   */
  private serves(key: Uint8Array, op: number): boolean {
    if (this.clover !== null) return true;
    const state = this.deps.ownedSlots[slotOfKey(key)];
    if (state === SlotState.owned) return true;
    return state === SlotState.settling && op === WireOp.put && this.copier === null;
  }

  /** The key as this thread stores it: in DINOMO-N mode, under its partition tag (a reused view). */
  private stored(key: Uint8Array): Uint8Array {
    return this.copier === null ? key : tagKey(this.options.rank, key, this.taggedKey);
  }

  /** The slot of a key as stored (DAC, records of own writes). */
  private slotOfStored(key: Uint8Array): number {
    return this.copier === null ? slotOfKey(key) : slotOfTaggedKey(key);
  }

  private refuseSlot(requestId: number, slot: number): void {
    const rank = this.options.rank;
    const state = this.deps.ownedSlots[slot];
    if (state === SlotState.handingOff) {
      this.out.addError(
        requestId,
        'TRYAGAIN',
        `slot ${slot} is being handed over by KN thread ${rank}`,
      );
    } else if (state === SlotState.settling) {
      this.out.addError(
        requestId,
        'TRYAGAIN',
        this.copier === null
          ? `slot ${slot} just moved to KN thread ${rank}, which serves its reads once the previous owner's log is merged`
          : `slot ${slot} just moved to KN thread ${rank}, which serves it once its keys are copied into its partition`,
      );
    } else {
      this.out.addError(requestId, 'MOVED', `slot ${slot} is not owned by KN thread ${rank}`);
    }
  }

  /**
   * Hands slots over to another thread (DESIGN.md section 8, "Move slots S from A to B"), as a
   * control step between request batches: requests for S get TRYAGAIN from now on; the open batch is
   * committed and acknowledged; the thread forgets S (DAC entries and records of its own writes) and
   * answers MOVED for S. Resolves with the chain's committed LSN: the new owner serves reads of S
   * once the DPM merged the chain through it (acquireSlots). The thread does not wait for that merge
   * itself, so its other slots pause only for the commit.
   */
  releaseSlots(slots: readonly number[]): Promise<number> {
    return this.runControl(async () => {
      const owned = this.deps.ownedSlots;
      const moving = new Uint8Array(owned.length);
      for (const slot of slots) {
        moving[slot] = 1;
        if (owned[slot] !== SlotState.notOwned) owned[slot] = SlotState.handingOff;
      }
      this.commitNow();
      this.flush();
      if (this.connectionLost) await this.recover();
      const inSlots = (key: Uint8Array): boolean => moving[this.slotOfStored(key)] === 1;
      if (this.options.mutants?.noDacInvalidation !== true) this.deps.dac.removeWhere(inSlots);
      this.recent.dropWhere(inSlots);
      for (const slot of slots) owned[slot] = SlotState.notOwned;
      return this.log.committedLsn;
    });
  }

  /**
   * Starts serving `slots` in epoch `epoch` (after the old owner released them and the epoch was
   * persisted). Writes are taken at once; reads and deletes once the DPM merged every chain in
   * `waitFor` through its LSN (the previous owners' logs), when the returned promise resolves.
   */
  acquireSlots(
    slots: readonly number[],
    epoch: number,
    waitFor: readonly MergeFence[] = [],
  ): Promise<void> {
    // The M-node repeats an acquire it got no answer to: the repeat joins the first one's wait.
    const running = this.acquiring.get(epoch);
    if (running !== undefined) return running;
    const acquired = this.acquire(slots, epoch, waitFor).finally(() =>
      this.acquiring.delete(epoch),
    );
    this.acquiring.set(epoch, acquired);
    return acquired;
  }

  private async acquire(
    slots: readonly number[],
    epoch: number,
    waitFor: readonly MergeFence[],
  ): Promise<void> {
    // DINOMO-N copies every acquired slot's keys, also after a failover, whose fences were merged
    // before the acquire and so come without any.
    const settle =
      this.copier !== null ||
      (waitFor.length > 0 && this.options.mutants?.skipMergeOnHandoff !== true);
    const settling: number[] = [];
    await this.runControl(() => {
      if (this.retiredReason !== null) {
        return Promise.reject(new DinomoError('FENCED', `KN thread ${this.options.rank} retired`));
      }
      // Writes of the new epoch are newer than anything the previous owners wrote.
      if (epoch > this.epoch) this.epoch = epoch;
      const owned = this.deps.ownedSlots;
      for (const slot of slots) {
        if (owned[slot] !== SlotState.owned) {
          owned[slot] = settle ? SlotState.settling : SlotState.owned;
          if (settle) settling.push(slot);
        }
      }
      return Promise.resolve();
    });
    if (!settle) return;
    for (const fence of waitFor) await this.waitMergedRetrying(fence);
    const copy = settling.length > 0 && this.options.mutants?.skipPartitionCopy !== true;
    if (this.copier !== null && copy) await this.copier.copyIn(settling);
    const owned = this.deps.ownedSlots;
    for (const slot of slots) if (owned[slot] === SlotState.settling) owned[slot] = SlotState.owned;
  }

  /** Waits until the DPM merged chain `fence.rank` through `fence.lsn`, across DPM restarts. */
  private async waitMergedRetrying(fence: MergeFence): Promise<void> {
    await this.retrying(() => this.deps.dpm.waitMerged(fence.rank, fence.lsn));
  }

  /** Runs `attempt` until it succeeds or fails for good (not UNAVAILABLE or TIMEOUT). */
  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    const retryUs = this.options.reconnectRetryUs ?? defaultReconnectRetryUs;
    for (;;) {
      if (this.retiredReason !== null) {
        throw new DinomoError('FENCED', `KN thread ${this.options.rank} retired`);
      }
      try {
        return await attempt();
      } catch (err) {
        if (!isTransient(err)) throw err;
        await this.sleepUs(retryUs);
      }
    }
  }

  /** What the DINOMO-N partition copier uses of this thread (partition-copy.ts). */
  private copyHost(): PartitionCopyHost {
    const { deps, options } = this;
    const copied = (): void => {
      this.commitNow();
      this.flush();
      if (this.connectionLost) {
        throw new DinomoError('UNAVAILABLE', 'a batch of copied keys failed to commit');
      }
    };
    return {
      rank: options.rank,
      settling: (slot) => deps.ownedSlots[slot] === SlotState.settling,
      lookup: (key, hash) => deps.index.lookup(key, hash),
      get value() {
        return deps.index.value;
      },
      stage: (op, key, value, hash) => this.write(-1, op, key, value, hash, true),
      commit: copied,
      scan: (slots, tableVersion, fromBucket): Promise<PartitionScanPage> =>
        this.retrying(() =>
          deps.dpm.scanPartitions(options.rank, slots, tableVersion, fromBucket, copyPageKeys),
        ),
      control: (step) =>
        this.retrying(async () => {
          try {
            await this.runControl(step);
          } catch (err) {
            // A fabric failure in the middle of a page: reconnect before the page is tried again.
            if (isTransient(err) && !this.connectionLost) this.loseConnection();
            throw err;
          }
        }),
      copied: (keys) => bump(deps.stats, ThreadStat.keysCopied, keys),
    };
  }

  private sleepUs(us: number): Promise<void> {
    return new Promise<void>((resolve) => this.deps.clock.setTimer(us, resolve));
  }

  private runControl<T>(step: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.controls.push(() => step().then(resolve, reject));
      if (!this.draining) void this.drain();
    });
  }

  private get(requestId: number, key: Uint8Array): void {
    bump(this.deps.stats, ThreadStat.gets);
    const hash = hashKey(key);
    const found = this.clover === null ? this.locate(key, hash) : this.locateChain(key, hash);
    if (found === Found.value) {
      this.out.addResponse(requestId, WireStatus.ok, this.foundValue);
    } else {
      this.out.addResponse(requestId, WireStatus.notFound, null);
    }
  }

  /**
   * Finds the newest committed value of `key` (into `foundValue`), counting how it was served.
   * Every source it consults holds only committed data, so a read never sees an unacknowledged write.
   */
  private locate(key: Uint8Array, hash: number): number {
    const { dac, stats } = this.deps;
    const hit = dac.lookup(key, hash);
    if (hit === DacHit.value) {
      bump(stats, ThreadStat.valueHits);
      this.foundValue = dac.valueView;
      return Found.value;
    }
    const own = this.recent.find(hash, key);
    if (own !== null) {
      bump(stats, ThreadStat.logHits);
      if (isTombstone(own)) return Found.none;
      this.foundValue = recordedValue(own);
      return Found.value;
    }
    if (hit === DacHit.shortcut && this.readShortcut(key, hash)) {
      bump(stats, ThreadStat.shortcutHits);
      return Found.value;
    }
    return this.lookupIndex(key, hash);
  }

  /** One RT: reads the entry a shortcut points to and validates key, checksum and generation. */
  private readShortcut(key: Uint8Array, hash: number): boolean {
    const { dac, fabric } = this.deps;
    const s = dac.shortcut;
    const bytes = s.entryBytes;
    if (bytes > this.scratch.length) this.growScratch(bytes);
    let valid = s.entryOffset + bytes <= fabric.regionBytes;
    if (valid) {
      fabric.read(s.entryOffset, bytes, this.scratch);
      const v = this.scratchView;
      valid =
        entryIsValid(this.scratch, v, 0, bytes) &&
        entryKeyEquals(this.scratch, v, 0, key) &&
        v.getUint32(Entry.generation, true) === s.generation &&
        v.getUint8(Entry.op) === EntryOp.put;
    }
    if (!valid) {
      // The shortcut is stale (its block was reused): drop it and fall back to the index.
      bump(this.deps.stats, ThreadStat.shortcutStale);
      dac.remove(key, hash);
      return false;
    }
    const valueStart = Entry.key + key.length;
    this.foundValue = this.scratch.subarray(
      valueStart,
      valueStart + this.scratchView.getUint32(Entry.valueLen, true),
    );
    dac.afterShortcutRead(key, hash, this.foundValue);
    return true;
  }

  private lookupIndex(key: Uint8Array, hash: number): number {
    const { dac, fabric, index } = this.deps;
    const rtsBefore = fabric.counters.rts;
    const found = index.lookup(key, hash);
    if (!this.countMiss(fabric.counters.rts - rtsBefore, found)) return Found.none;
    this.foundValue = index.value;
    this.shortcut.entryOffset = index.entryOffset;
    this.shortcut.entryBytes = index.entryBytes;
    this.shortcut.generation = index.generation;
    dac.insert(key, hash, index.value, this.shortcut);
    return Found.value;
  }

  /**
   * Clover mode's read (docs/baselines.md): the cached shortcut's version, or the indexed one, then
   * its links to the newest version (1 RT each). The newest version reached becomes the shortcut.
   */
  private locateChain(key: Uint8Array, hash: number): number {
    const { dac, stats } = this.deps;
    if (dac.lookup(key, hash) === DacHit.shortcut) {
      const walker = this.cloverWalker();
      const s = dac.shortcut;
      if (walker.read(s.entryOffset, s.entryBytes, key) && walker.follow(key)) {
        bump(stats, ThreadStat.shortcutHits);
        return this.chainAnswer(key, hash);
      }
      bump(stats, ThreadStat.shortcutStale);
      dac.remove(key, hash);
    }
    const rtsBefore = this.deps.fabric.counters.rts;
    const found = this.findTail(key, hash);
    if (!this.countMiss(this.deps.fabric.counters.rts - rtsBefore, found)) return Found.none;
    return this.chainAnswer(key, hash);
  }

  /** Counts a miss that took `rts` round trips (the DAC's miss cost); returns `found`. */
  private countMiss(rts: number, found: boolean): boolean {
    const { dac, stats } = this.deps;
    bump(stats, ThreadStat.misses);
    bump(stats, ThreadStat.missRts, rts);
    dac.recordMissCost(rts);
    if (!found) bump(stats, ThreadStat.notFound);
    return found;
  }

  /** Index lookup, then links to the newest version; false when the key has no version at all. */
  private findTail(key: Uint8Array, hash: number): boolean {
    const { index } = this.deps;
    const walker = this.cloverWalker();
    for (let attempt = 0; attempt <= 8; attempt++) {
      if (!index.lookup(key, hash)) return false;
      walker.adopt(
        index.entryOffset,
        index.entryBytes,
        index.op,
        index.generation,
        index.link,
        index.value,
      );
      if (walker.follow(key)) return true;
    }
    throw new DinomoError('CORRUPT', `the version chain of a ${key.length}-byte key is broken`);
  }

  /** Caches the version the walker reached as the key's shortcut and answers from it. */
  private chainAnswer(key: Uint8Array, hash: number): number {
    const walker = this.cloverWalker();
    this.shortcut.entryOffset = walker.offset;
    this.shortcut.entryBytes = walker.span;
    this.shortcut.generation = walker.generation;
    this.deps.dac.insert(key, hash, walker.value, this.shortcut);
    if (walker.op !== EntryOp.put) return Found.none;
    this.foundValue = walker.value;
    return Found.value;
  }

  private cloverWalker(): ChainWalker {
    assert(this.clover !== null, 'clover mode');
    return this.clover;
  }

  private async remove(requestId: number, key: Uint8Array): Promise<void> {
    bump(this.deps.stats, ThreadStat.deletes);
    const hash = hashKey(key);
    // A delete reports whether the key existed, so it must see every earlier write of the key,
    // including one still staged in the open batch (locate sees only committed writes). Without
    // this, two deletes in one batch both answered "existed" (found by the linearizability suite).
    if (this.hasStagedWrite(key, hash)) {
      this.commitNow();
      if (this.connectionLost) {
        throw new DinomoError('UNAVAILABLE', 'the batch before this delete failed to commit');
      }
    }
    // A delete of an absent key changes nothing, so it is answered at once without a tombstone.
    const found = this.clover === null ? this.locate(key, hash) : this.locateChain(key, hash);
    if (found !== Found.value) {
      this.out.addResponse(requestId, WireStatus.notFound, null);
      return;
    }
    await this.write(requestId, EntryOp.delete, key, null, hash);
  }

  /** True when the open (staged, uncommitted) batch holds a write of `key`. */
  private hasStagedWrite(key: Uint8Array, hash: number): boolean {
    if (this.pending.length === 0) return false;
    const mirror = this.log.mirrorBytes;
    for (const p of this.pending) {
      if (p.hash === hash && entryKeyMatches(mirror, p.at, key)) return true;
    }
    return false;
  }

  private async write(
    requestId: number,
    op: number,
    key: Uint8Array,
    value: Uint8Array | null,
    hash: number,
    internal = false,
  ): Promise<void> {
    if (op === EntryOp.put && !internal) bump(this.deps.stats, ThreadStat.puts);
    const flags = this.clover === null ? 0 : EntryFlag.linked;
    const size = entrySpan(key.length, value === null ? 0 : value.length, flags);
    if (!this.log.fits(size)) {
      this.commitNow();
      this.flush();
      bump(this.deps.stats, ThreadStat.blocksSwitched);
      if (this.log.mustWaitForMerge) bump(this.deps.stats, ThreadStat.backpressureWaits);
      try {
        await this.log.switchBlock();
      } catch (err) {
        // A block request that timed out may still have been served: the DPM then linked a block
        // this thread never enters, and the merge would stop in front of it for good. Reconnecting
        // reopens the chain, which seals every block in it.
        if (isTransient(err) && !this.connectionLost) this.loseConnection();
        throw err;
      }
      this.leaseOk = this.leaseValid();
    }
    assert(this.log.fits(size), 'an entry always fits an empty block');
    const at = this.log.append(
      op === EntryOp.put ? EntryOp.put : EntryOp.delete,
      key,
      value,
      this.epoch,
      ++this.seq,
      flags,
    );
    const p = this.sparePending.pop() ?? {
      requestId: 0,
      op: 0,
      hash: 0,
      at: 0,
      acked: false,
      existed: false,
    };
    p.requestId = requestId;
    p.op = op;
    p.hash = hash;
    p.at = at;
    // A write no client waits for (DINOMO-N's partition copy) counts as answered already.
    p.acked = internal || this.options.mutants?.ackBeforeCommit === true;
    // The ackBeforeCommit mutant answers here, before the batch is written: an acknowledged write
    // that a crash can lose, and that reads cannot see until the commit.
    if (p.acked && !internal) this.out.addResponse(requestId, WireStatus.ok, null);
    this.pending.push(p);
    if (this.log.stagedBytes >= this.options.groupCommitBytes) this.commitNow();
    else if (this.commitTimer === null) {
      this.commitTimer = this.deps.clock.setTimer(this.options.groupCommitUs, () => {
        this.commitTimer = null;
        this.commitNow();
        this.flush();
      });
    }
  }

  /** Group commit: writes the batch and its commit word, then updates the DAC and acknowledges. */
  private commitNow(): void {
    if (this.commitTimer !== null) {
      this.commitTimer.cancel();
      this.commitTimer = null;
    }
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    try {
      this.log.commit();
    } catch (err) {
      this.onCommitFailed(batch, err);
      this.recycle(batch);
      return;
    }
    if (this.clover === null) this.applyCommitted(batch);
    else this.linkCommitted(batch);
    this.recycle(batch);
  }

  /**
   * Clover mode: the batch is committed; each write now takes effect by linking its version behind
   * its key's newest one (a CAS, docs/baselines.md), and is acknowledged after that. A key with no
   * version yet is created through the DPM, asynchronously (createAll). A fabric failure part way
   * leaves the rest unlinked: committed but unreachable, so dead, and their clients get the error
   * (indeterminate, as the ones already linked took effect).
   */
  private linkCommitted(batch: PendingWrite[]): void {
    const mirror = this.log.mirrorBytes;
    const view = this.log.mirrorView;
    const blockOffset = this.log.currentBlockOffset;
    const generation = this.log.blockGeneration;
    bump(this.deps.stats, ThreadStat.commits);
    bump(this.deps.stats, ThreadStat.committedEntries, batch.length);
    const creates: CreateWrite[] = [];
    const linked: PendingWrite[] = [];
    let failure: unknown = null;
    for (let i = 0; i < batch.length && failure === null; i++) {
      const p = batch[i] as PendingWrite;
      const key = entryKey(mirror, p.at);
      const entryOffset = blockOffset + p.at;
      const span = entrySpanAt(view, p.at);
      try {
        if (!this.findPredecessor(key, p.hash)) {
          creates.push({ ...p, key: key.slice(), entryOffset, span, generation });
          continue;
        }
        p.existed = this.link(p.hash, key, entryOffset, span, generation);
        linked.push(p);
      } catch (err) {
        failure = err;
        for (const rest of batch.slice(i)) if (!rest.acked) this.fail(rest.requestId, err);
      }
    }
    this.answerLinked(linked, failure);
    if (creates.length > 0) void this.runControl(() => this.createAll(creates));
  }

  /**
   * Acknowledges linked writes once their links are durable: a link is a one-sided CAS, volatile in
   * the DPM until persisted, and a DPM crash that rolled it back would unlink an acknowledged write.
   */
  private answerLinked(linked: LinkedWrite[], failure: unknown): void {
    if (linked.length === 0) return;
    let error = failure;
    if (error === null) {
      try {
        this.deps.fabric.persist();
      } catch (err) {
        error = err;
      }
    }
    for (const w of linked) {
      if (error === null) this.answerWrite(w, w.existed);
      else if (!w.acked) this.fail(w.requestId, error);
    }
  }

  /** Sets the walker on the key's newest known version: the shortcut, else the index. */
  private findPredecessor(key: Uint8Array, hash: number): boolean {
    const walker = this.cloverWalker();
    const { dac } = this.deps;
    if (dac.lookup(key, hash) === DacHit.shortcut) {
      const s = dac.shortcut;
      if (walker.read(s.entryOffset, s.entryBytes, key)) return true;
      dac.remove(key, hash);
    }
    return this.findTail(key, hash);
  }

  /**
   * Links the version at `entryOffset` behind the key's newest (the walker stands on a version of
   * the key) and makes it the key's shortcut. Returns whether the key existed just before.
   */
  private link(
    hash: number,
    key: Uint8Array,
    entryOffset: number,
    span: number,
    generation: number,
  ): boolean {
    const walker = this.cloverWalker();
    if (!walker.linkBehind(key, entryOffset)) {
      throw new DinomoError('CORRUPT', `the version chain of a ${key.length}-byte key is broken`);
    }
    this.shortcut.entryOffset = entryOffset;
    this.shortcut.entryBytes = span;
    this.shortcut.generation = generation;
    this.deps.dac.insert(key, hash, EMPTY, this.shortcut);
    return walker.op === EntryOp.put;
  }

  private answerWrite(p: Pick<PendingWrite, 'requestId' | 'op' | 'acked'>, existed: boolean): void {
    if (p.acked) return;
    const status = p.op === EntryOp.delete && !existed ? WireStatus.notFound : WireStatus.ok;
    this.out.addResponse(p.requestId, status, null);
  }

  /**
   * Creates keys that had no version: the DPM indexes each new version unless another writer's came
   * first, in which case the write links behind that chain. Runs as a control step, so requests
   * wait for it and the next batch sees the keys.
   */
  private async createAll(creates: CreateWrite[]): Promise<void> {
    const rank = this.options.rank;
    const winners = await Promise.allSettled(
      creates.map((c) => this.deps.dpm.createLinked(rank, c.entryOffset)),
    );
    const linked: LinkedWrite[] = [];
    for (let i = 0; i < creates.length; i++) {
      const c = creates[i] as CreateWrite;
      const won = winners[i] as PromiseSettledResult<number>;
      try {
        if (won.status === 'rejected') throw won.reason;
        if (won.value === c.entryOffset) {
          // This version is the key's first; the DPM's index update is durable before its answer.
          this.shortcut.entryOffset = c.entryOffset;
          this.shortcut.entryBytes = c.span;
          this.shortcut.generation = c.generation;
          this.deps.dac.insert(c.key, c.hash, EMPTY, this.shortcut);
          this.answerWrite(c, false);
        } else if (this.cloverWalker().read(won.value, c.span, c.key)) {
          const existed = this.link(c.hash, c.key, c.entryOffset, c.span, c.generation);
          linked.push({ ...c, existed });
        } else {
          throw new DinomoError('CORRUPT', 'the DPM answered a create with an invalid version');
        }
      } catch (err) {
        this.fail(c.requestId, err);
      }
    }
    this.answerLinked(linked, null);
    this.flush();
  }

  private applyCommitted(batch: PendingWrite[]): void {
    const { dac, stats } = this.deps;
    const mirror = this.log.mirrorBytes;
    const blockOffset = this.log.currentBlockOffset;
    // A batch committed after the lease ran out is not acknowledged: the thread may have been
    // declared failed meanwhile, and its slots given to others before this commit landed.
    const leaseHeld = this.leaseValid();
    const leaseLost = `KN thread ${this.options.rank} lost its lease before acknowledging; the write may or may not have happened`;
    bump(stats, ThreadStat.commits);
    bump(stats, ThreadStat.committedEntries, batch.length);
    for (const p of batch) {
      const key = entryKey(mirror, p.at);
      this.recent.record(p.hash, key, this.log.lsnAt(p.at), mirror, p.at);
      if (p.op === EntryOp.delete) {
        dac.remove(key, p.hash);
      } else {
        const node = this.recent.find(p.hash, key);
        assert(node !== null, 'the write was just recorded');
        const value = recordedValue(node);
        this.shortcut.entryOffset = blockOffset + p.at;
        this.shortcut.entryBytes = entryBytes(key.length, value.length);
        this.shortcut.generation = this.log.blockGeneration;
        dac.insert(key, p.hash, value, this.shortcut);
      }
      if (p.acked) continue;
      if (leaseHeld) this.out.addResponse(p.requestId, WireStatus.ok, null);
      else this.out.addError(p.requestId, 'UNAVAILABLE', leaseLost);
    }
  }

  /**
   * A commit failed: its writes may or may not be in the DPM (the commit word may have landed), so
   * their clients get the error (UNAVAILABLE and TIMEOUT are indeterminate), the block is abandoned,
   * and the keys are remembered as uncertain. The thread then reconnects before serving anything
   * else (see recover).
   */
  private onCommitFailed(batch: PendingWrite[], err: unknown): void {
    const mirror = this.log.mirrorBytes;
    for (const p of batch) {
      if (this.uncertain.length < this.options.inflightMax) {
        this.uncertain.push({ key: entryKey(mirror, p.at).slice(), hash: p.hash });
      }
      if (!p.acked) this.fail(p.requestId, err);
    }
    this.noteSettle(this.log.abandonBlock());
    this.loseConnection();
  }

  /** Stops serving until `recover` has run (the drain loop runs it before anything else). */
  private loseConnection(): void {
    this.connectionLost = true;
    if (!this.draining) void this.drain();
  }

  private noteSettle(lsn: number | null): void {
    if (lsn !== null && (this.settleLsn === null || lsn > this.settleLsn)) this.settleLsn = lsn;
  }

  /**
   * Reconnects after the DPM connection was lost (the DPM restarted, or the link broke). Staged
   * writes fail, the current block is abandoned, and the thread continues in a fresh block the DPM
   * links after sealing the old ones. Before serving again it waits until the DPM merged everything
   * up to the abandoned block: from then on the index is the truth for every key whose write was
   * uncertain, so those keys leave the DAC (which may hold an older value than the DPM now has) and
   * this thread's records of older writes are dropped.
   */
  private async recover(): Promise<void> {
    this.commitNow();
    this.flush();
    this.noteSettle(this.log.abandonBlock());
    const retryUs = this.options.reconnectRetryUs ?? defaultReconnectRetryUs;
    for (;;) {
      try {
        await this.deps.fabric.reconnect();
        await this.log.reopen();
        if (this.settleLsn !== null)
          await this.deps.dpm.waitMerged(this.options.rank, this.settleLsn);
        break;
      } catch (err) {
        bump(this.deps.stats, ThreadStat.errors);
        if (isDinomoError(err) && err.code === 'FENCED') {
          this.retire('fenced at the DPM');
          break;
        }
        // Whatever failed, the block just taken may belong to a DPM that died meanwhile: start over.
        this.noteSettle(this.log.abandonBlock());
        await this.sleepUs(retryUs);
      }
    }
    if (this.settleLsn !== null) this.log.releaseMergedThrough(this.settleLsn);
    for (const u of this.uncertain) this.deps.dac.remove(u.key, u.hash);
    this.uncertain = [];
    this.settleLsn = null;
    this.connectionLost = false;
  }

  private recycle(batch: PendingWrite[]): void {
    for (const p of batch) if (this.sparePending.length < 4096) this.sparePending.push(p);
  }

  private fail(requestId: number, err: unknown): void {
    bump(this.deps.stats, ThreadStat.errors);
    if (isDinomoError(err) && err.code === 'UNAVAILABLE' && !this.connectionLost) {
      this.loseConnection();
    }
    if (isDinomoError(err) && err.code === 'FENCED' && this.retiredReason === null) {
      this.retire('fenced at the DPM');
    }
    const wire = toWireError(err);
    if (!isDinomoError(err)) console.error(`KN thread ${this.options.rank}: unexpected error`, err);
    this.out.addError(requestId, wire.code, wire.message);
  }

  private refuse(batch: Uint8Array, code: ErrorCode, message: string): void {
    const r = new RequestReader();
    r.reset(batch);
    while (r.next()) this.out.addError(r.requestId, code, message);
    bump(this.deps.stats, ThreadStat.errors);
    this.flush();
  }

  private flush(): void {
    if (this.out.count === 0) return;
    this.deps.send(this.out.take());
  }

  private growScratch(bytes: number): void {
    this.scratch = new Uint8Array(Math.max(bytes, this.scratch.length * 2));
    this.scratchView = new DataView(this.scratch.buffer);
  }

  /** Writes committed since the thread started. */
  get committedEntries(): number {
    return this.deps.stats[ThreadStat.committedEntries] as number;
  }

  /** Copies cache and fabric counters into the shared stats record. */
  publishStats(): void {
    const { dac, fabric, stats } = this.deps;
    const d = dac.stats();
    stats[ThreadStat.rts] = fabric.counters.rts;
    stats[ThreadStat.bytesRead] = fabric.counters.bytesRead;
    stats[ThreadStat.bytesWritten] = fabric.counters.bytesWritten;
    stats[ThreadStat.persists] = fabric.counters.persists;
    stats[ThreadStat.flushes] = fabric.counters.flushes;
    stats[ThreadStat.cacheBytesUsed] = d.bytesUsed;
    stats[ThreadStat.cacheCapacityBytes] = d.capacityBytes;
    stats[ThreadStat.cacheValues] = d.values;
    stats[ThreadStat.cacheShortcuts] = d.shortcuts;
    stats[ThreadStat.missCostRts] = dac.missCost;
    stats[ThreadStat.recentWrites] = this.recent.size;
  }
}
