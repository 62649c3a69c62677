import type { Mutants } from '../config/mutants.js';
import { cleanBlocks } from '../dpm/cleaner.js';
import { DpmManagerService } from '../dpm/dpm-manager-service.js';
import type { KnToDpmMessage } from '../dpm/dpm-protocol.js';
import { mergeChain } from '../dpm/merge.js';
import { recoverRegion, type RecoveryReport } from '../dpm/recovery.js';
import { formatRegion, openRegion, type Region } from '../dpm/region.js';
import { DinomoError } from '../errors/index.js';
import type { Simulation } from './event-loop.js';

export interface SimDpmOptions {
  regionBytes: number;
  blockBytes: number;
  chainCount: number;
  indexBytes: number;
  /** Virtual time one merge or cleaning task takes. */
  taskUsMin: number;
  taskUsMax: number;
  mergeBatchEntries: number;
  maxConcurrentMerges: number;
  /** Period of the manager's re-check tick. */
  tickUs: number;
  mutants: Mutants;
}

/** Where a crash that is armed (by a fault) strikes: before the next KN operation of this kind. */
export type CrashPoint = 'before-write' | 'before-commit-word' | 'before-persist' | 'idle';

interface DirtyWord {
  old: bigint;
  rank: number;
}

export interface SimDpmStats {
  crashes: number;
  restarts: number;
  /** Unpersisted 8-byte words a crash rolled back to their old contents. */
  tornWordsDropped: number;
  /** Unpersisted 8-byte words a crash kept. */
  tornWordsKept: number;
  /** Victim blocks emptied by log cleaning, over every incarnation. */
  blocksCleaned: number;
  recoveries: RecoveryReport[];
}

export const dpmNode = 'dpm';

/**
 * The simulated DPM: a region in plain memory, the real DPM manager (allocation, merge scheduling,
 * cleaning) with merges and cleaning run as simulated tasks, and a persistence model with crashes.
 *
 * Persistence: a one-sided write from a KN thread stays volatile until that thread persists; the old
 * contents of every 8-byte word it touched are remembered. A crash rolls back a random subset of
 * the volatile words, per 64-byte line: the whole line lost, kept, or a random subset of its words
 * (x86 persistent memory guarantees only 8-byte failure atomicity). DPM-side updates (merges,
 * allocation, cleaning) are persisted at the end of each task: crashes happen between simulated
 * events or inside a KN operation, never inside a DPM task. After a crash the DPM is down (KN
 * accesses fail with UNAVAILABLE, messages to it are lost) until `restart`, which runs recovery.
 */
export class SimDpm {
  readonly sab: SharedArrayBuffer;
  readonly region: Region;
  readonly stats: SimDpmStats = {
    crashes: 0,
    restarts: 0,
    tornWordsDropped: 0,
    tornWordsKept: 0,
    blocksCleaned: 0,
    recoveries: [],
  };
  private cleanedBefore = 0;
  private readonly sim: Simulation;
  private readonly options: SimDpmOptions;
  private readonly dirty = new Map<number, DirtyWord>();
  private service: DpmManagerService | null = null;
  private incarnationValue = 1;
  private upValue = false;
  private pumpPending = false;
  private armed: CrashPoint | null = null;
  private readonly stalls: Array<{
    fromUs: number;
    toUs: number;
    extraUs: number;
    rank: number | null;
  }> = [];
  /** Called at every crash (the harness marks in-flight operations as crossing a fault). */
  onCrash: () => void = () => undefined;

  constructor(sim: Simulation, options: SimDpmOptions) {
    this.sim = sim;
    this.options = options;
    this.sab = new SharedArrayBuffer(options.regionBytes);
    formatRegion(this.sab, {
      blockBytes: options.blockBytes,
      chainCount: options.chainCount,
      indexBytes: options.indexBytes,
      formatId: [sim.random.int(2 ** 32), sim.random.int(2 ** 32)],
    });
    this.region = openRegion(this.sab);
    this.startService();
  }

  get up(): boolean {
    return this.upValue;
  }

  /** True when the DPM is up and every chain is merged through its commits (no merge running). */
  get allMerged(): boolean {
    const core = this.service?.core;
    if (!this.upValue || core === undefined) return false;
    return core.runningCount === 0 && core.chainsNeedingMerge().length === 0;
  }

  get incarnation(): number {
    return this.incarnationValue;
  }

  /** A KN thread's request arriving over the network (sent while the DPM had `incarnation`). */
  deliver(reply: (msg: object) => void, msg: KnToDpmMessage, sentIncarnation: number): void {
    // A message sent to an earlier incarnation was on a connection that broke with it.
    if (!this.upValue || sentIncarnation !== this.incarnationValue || this.service === null) return;
    const incarnation = this.incarnationValue;
    const port = {
      postMessage: (answer: object) => {
        if (incarnation === this.incarnationValue) reply(answer);
      },
    };
    // Failover makes the failed thread's writes durable before merging them: the DPM flushes the
    // region's cache for that chain (a thread that died between its commit word and its persist left
    // them volatile, and the index must never point at words a later crash could revert).
    if (msg.type === 'failover') this.persist(msg.rank);
    this.service.onKnMessage(port, msg);
  }

  /** The doorbell a KN thread rings after a commit: a pump soon, coalesced. */
  ring(): void {
    if (this.pumpPending || !this.upValue) return;
    this.pumpPending = true;
    const incarnation = this.incarnationValue;
    this.sim.schedule(this.taskDelay(null) >> 2, 'dpm-pump', () => {
      this.pumpPending = false;
      if (incarnation === this.incarnationValue) this.service?.pump();
    });
  }

  /** Refreshes the counters that live in the current manager (call before reading `stats`). */
  collectStats(): SimDpmStats {
    this.stats.blocksCleaned =
      this.cleanedBefore + (this.service?.core.cleaner.stats().blocksCleaned ?? 0);
    return this.stats;
  }

  /** The crash point armed and not yet struck, or null. */
  get armedPoint(): CrashPoint | null {
    return this.armed;
  }

  /** Arms a crash: it strikes before the next KN operation of kind `point` (or at once for idle). */
  armCrash(point: CrashPoint): void {
    if (!this.upValue) return;
    if (point === 'idle') this.crash();
    else this.armed = point;
  }

  /** Called by a KN fabric before each mutating operation; crashes the DPM if armed for it. */
  beforeMutation(kind: Exclude<CrashPoint, 'idle'>): void {
    if (this.armed !== kind) return;
    this.armed = null;
    this.crash();
  }

  /** Remembers the old contents of the words `[offset, offset + length)` before a KN write. */
  recordWrite(rank: number, offset: number, length: number): void {
    const first = Math.floor(offset / 8);
    const last = Math.floor((offset + length - 1) / 8);
    for (let w = first; w <= last; w++) {
      if (!this.dirty.has(w)) {
        this.dirty.set(w, { old: this.region.i64[w] as bigint, rank });
      }
    }
  }

  /** A KN thread's persist: its volatile words become durable. */
  persist(rank: number): void {
    for (const [w, d] of this.dirty) if (d.rank === rank) this.dirty.delete(w);
  }

  /** Crashes the DPM process (and the persistence domain's volatile part with it). */
  crash(): void {
    if (!this.upValue) return;
    this.stats.crashes++;
    this.sim.mix('dpm-crash');
    this.tearVolatileWords();
    this.cleanedBefore += this.service?.core.cleaner.stats().blocksCleaned ?? 0;
    this.upValue = false;
    this.incarnationValue++;
    this.service = null;
    this.armed = null;
    this.pumpPending = false;
    this.onCrash();
  }

  /** Restarts the DPM on the surviving region: recovery, then a fresh manager. */
  restart(): void {
    if (this.upValue) return;
    this.stats.restarts++;
    this.sim.mix('dpm-restart');
    this.stats.recoveries.push(recoverRegion(this.region, this.options.mutants));
    this.startService();
  }

  private startService(): void {
    const incarnation = this.incarnationValue;
    const { mutants } = this.options;
    const whileAlive = <T>(work: () => T, rank: number | null): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        this.sim.schedule(this.taskDelay(rank), 'dpm-task', () => {
          // A task of a crashed incarnation never reports: its manager is gone.
          if (incarnation !== this.incarnationValue) return;
          try {
            resolve(work());
          } catch (err) {
            reject(err instanceof Error ? err : new DinomoError('INTERNAL', String(err)));
          }
        });
      });
    this.service = new DpmManagerService(this.region, {
      runMerge: (rank, maxEntries) =>
        whileAlive(() => mergeChain(this.region, rank, maxEntries, mutants), rank),
      runClean: (request) => whileAlive(() => cleanBlocks(this.region, request), null),
      maxWaiters: 4096,
      mergeBatchEntries: this.options.mergeBatchEntries,
      maxConcurrentMerges: this.options.maxConcurrentMerges,
      mutants,
    });
    this.upValue = true;
    this.scheduleTick(incarnation);
  }

  private scheduleTick(incarnation: number): void {
    this.sim.schedule(this.options.tickUs, 'dpm-tick', () => {
      if (incarnation !== this.incarnationValue || this.service === null) return;
      this.service.tick();
      this.scheduleTick(incarnation);
    });
  }

  private tearVolatileWords(): void {
    const random = this.sim.random;
    const lineMode = new Map<number, number>();
    const words = [...this.dirty.keys()].sort((a, b) => a - b);
    for (const w of words) {
      const line = w >> 3;
      let mode = lineMode.get(line);
      if (mode === undefined) {
        mode = random.int(3);
        lineMode.set(line, mode);
      }
      const keep = mode === 0 ? false : mode === 1 ? true : random.int(2) === 1;
      if (keep) {
        this.stats.tornWordsKept++;
      } else {
        this.region.i64[w] = (this.dirty.get(w) as DirtyWord).old;
        this.stats.tornWordsDropped++;
      }
    }
    this.dirty.clear();
  }

  /**
   * Between `fromUs` and `toUs`, every DPM task takes `extraUs` longer (a busy or stalled DPM), or
   * with `rank`, only the merges of that chain (a slow merge worker: other chains overtake it).
   */
  addStall(fromUs: number, toUs: number, extraUs: number, rank: number | null = null): void {
    this.stalls.push({ fromUs, toUs, extraUs, rank });
  }

  /** How long the next task (a merge of chain `rank`, or null for other work) takes. */
  private taskDelay(rank: number | null): number {
    const { taskUsMin, taskUsMax } = this.options;
    const now = this.sim.nowUs();
    let extra = 0;
    for (const s of this.stalls) {
      if (now >= s.fromUs && now < s.toUs && (s.rank === null || s.rank === rank)) {
        extra += s.extraUs;
      }
    }
    return taskUsMin + this.sim.random.int(taskUsMax - taskUsMin + 1) + extra;
  }
}
