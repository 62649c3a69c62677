import { MessageChannel } from 'node:worker_threads';
import { ActorSystem, PortTransport, actorAddress, systemAddress } from '../actors/index.js';
import { fillOptions, type ClusterOptions, type FilledOptions } from '../config/index.js';
import { readMapEpoch, writeSlotMap, writeSlotOwners } from '../dpm/cluster-metadata.js';
import {
  fenceTableOffset,
  fenceWordOffset,
  formatRegion,
  openFileRegion,
  openRegion,
  unmergedChains,
  type FileRegion,
} from '../dpm/index.js';
import {
  fileRegionFlush,
  newFlushCounter,
  noFlush,
  readFlushCounter,
  type RegionFlush,
} from '../dpm/region-flush.js';
import { DinomoError } from '../errors/index.js';
import { currentIncarnation } from '../fabric/index.js';
import { EmbeddedClient, KnChannel, LatencyFeedback, type KvClient } from '../client/index.js';
import {
  embeddedLocation,
  knControlActorName,
  knThreadName,
  monitorActorName,
  postBatch,
  threadStatsBytes,
  type KnControlMessage,
  type KnStopped,
  type KnWorkerData,
  type MonitorMessage,
} from '../kn/index.js';
import { PortDpmControl } from '../kn/port-dpm-control.js';
import { evenSlotMap, planAddThreads, planRemoveThread, type SlotMove } from '../routing/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { workerScript } from '../util/worker-script.js';
import { collectStats, type ClusterStats } from './cluster-stats.js';
import { Autoscaler } from './autoscaler.js';
import { ElasticMonitor, knControlSteps, type MoveReport } from './elastic-monitor.js';
import type { DecisionRecord } from '../monitor/index.js';
import { WorkerHandle } from './worker-handle.js';
import { knThreadSettings } from './kn-settings.js';

const startTimeoutMs = 30_000;
const stopTimeoutMs = 30_000;

interface KnThreadHandle {
  knId: number;
  rank: number;
  handle: WorkerHandle;
  channel: KnChannel;
  /** live: serving or may serve; removed: its slots moved away and it stopped; dead: failed. */
  state: 'live' | 'removed' | 'dead';
}

/** The routing state an RN hands to bootstrapping clients (`cluster.routing()`). */
export interface RoutingSnapshot {
  /** The epoch of the slot map, as persisted in the DPM's cluster metadata. */
  epoch: number;
  /** Slot -> owning KN thread rank (16384 slots). */
  slotMap: Uint16Array;
  kns: Array<{ knId: number; ranks: number[] }>;
}

/** What `addKn` and `removeKn` did: the slots that moved and how long each move paused them. */
export interface KnChangeReport {
  knId: number;
  slotsMoved: number;
  /** From the call to the last moved slot being served by its new owner. */
  durationMs: number;
  moves: MoveReport[];
  /** The longest time any moved slot took no writes (target: at most 100 ms). */
  maxPauseMs: number;
  /**
   * The longest time any moved slot served no reads: the new owner serves them once the old
   * owner's log is merged.
   */
  maxReadPauseMs: number;
}

/** What `failKn` did: detection and failover times, and the moves that gave its slots away. */
export interface FailoverReport extends KnChangeReport {
  /** From the KN's death to the failure detector suspecting all of its threads. */
  detectMs: number;
  /** From the KN's death to every one of its slots being served again by a survivor. */
  failoverMs: number;
}

/** A rank whose failure was noticed: resolves once its slots are served by survivors. */
interface RankFailure {
  suspectedUs: number;
  done: Promise<MoveReport[]>;
}

/**
 * An embedded DINOMO cluster: the DPM region is a SharedArrayBuffer in this process, the DPM manager
 * (with its merge pool) and every KN thread are worker threads, and clients in this thread talk to
 * the KN threads directly. See docs/architecture.md.
 */
export class Cluster {
  private readonly options: FilledOptions;
  private readonly region: SharedArrayBuffer;
  private readonly statsBuffer: SharedArrayBuffer;
  private readonly slotMap: Uint16Array;
  private readonly clock: Clock;
  private readonly threads: KnThreadHandle[] = [];
  /** Client channels by rank; clients keep this array, so added threads become reachable. */
  private readonly channels: KnChannel[] = [];
  /** Ranks that own slots or may be given some. */
  private readonly liveRanks: number[] = [];
  /** Owners after every queued move has run: moves are planned against this, not the published map. */
  private readonly plannedOwners: Uint16Array;
  private readonly rankCapacity: number;
  private readonly monitor: ElasticMonitor;
  private readonly failures = new Map<number, RankFailure>();
  private nextKnId = 1;
  private autoscaler: Autoscaler | null = null;
  /** Latencies of every request this cluster's clients completed: client feedback for the M-node. */
  private readonly feedback = new LatencyFeedback();
  private managerControl: PortDpmControl | null = null;
  /** The file-backed region, when the cluster runs with a dataDir. */
  private readonly file: FileRegion | null = null;
  /** Chains a reopened region had not merged: merged before the cluster serves. */
  private readonly unmerged: Array<{ rank: number; lsn: number }>;
  /** Flushes of DPM-side state (manager, merge and cleaning tasks, M-node metadata) with 'sync'. */
  private readonly dpmFlushes = newFlushCounter();
  private manager: WorkerHandle | null = null;
  /** The main thread's actor system: control traffic to KN threads (stop, ping) goes through it. */
  private readonly actors: ActorSystem;
  private state: 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' = 'starting';
  private failure: string | null = null;

  private constructor(options: FilledOptions, clock: Clock, dataDir: string | undefined) {
    this.options = options;
    this.clock = clock;
    const ranks = options.kns * options.threadsPerKn;
    this.rankCapacity = options.maxKns * options.threadsPerKn;
    const format = { blockBytes: options.blockBytes, chainCount: this.rankCapacity };
    let epoch = 1;
    if (dataDir === undefined) {
      this.region = new SharedArrayBuffer(options.regionBytes);
      formatRegion(this.region, format);
    } else {
      this.file = openFileRegion(dataDir, options.regionBytes, format);
      this.region = this.file.region;
    }
    const { metadataOffset } = openRegion(this.region).geometry;
    this.unmerged = this.file?.reopened === true ? unmergedChains(openRegion(this.region)) : [];
    // Writes of this run must be newer than every version the earlier runs left in the region.
    if (this.file?.reopened === true) {
      epoch = readMapEpoch(new DataView(this.region), metadataOffset) + 1;
    }
    this.slotMap = evenSlotMap(ranks);
    this.plannedOwners = Uint16Array.from(this.slotMap);
    writeSlotMap(new DataView(this.region), metadataOffset, this.slotMap, epoch);
    // With durability 'sync', the region the workers start from (recovered, with this run's epoch)
    // is in the file before any of them writes; later, the M-node flushes each epoch it records.
    let flushMetadata: RegionFlush = noFlush;
    if (this.file !== null && options.durability === 'sync') {
      try {
        fileRegionFlush(this.region, this.dpmFlushes)();
      } catch (err) {
        this.file.release();
        throw err;
      }
      flushMetadata = fileRegionFlush(
        this.region,
        this.dpmFlushes,
        metadataOffset,
        fenceTableOffset(metadataOffset) - metadataOffset,
      );
    }
    this.statsBuffer = new SharedArrayBuffer(threadStatsBytes(this.rankCapacity));
    this.actors = ActorSystem.start({ ...embeddedLocation(process.pid, 'main'), clock });
    this.monitor = new ElasticMonitor(
      {
        clock,
        initialEpoch: epoch,
        slotMap: this.slotMap,
        ...knControlSteps(
          this.actors,
          (rank) => this.controlRef(rank),
          this.options.requestTimeoutMs,
        ),
        failover: async (rank, incarnation) => {
          if (this.managerControl === null) throw new DinomoError('CLOSED', 'no DPM manager');
          await this.managerControl.failover(rank, incarnation);
        },
        reachable: (rank) => this.threads[rank]?.state === 'live',
        onSuspect: (rank) => this.declareFailed(rank),
        persistOwners: (slots, owner, mapEpoch) => {
          try {
            writeSlotOwners(new DataView(this.region), metadataOffset, slots, owner, mapEpoch);
            flushMetadata();
            return Promise.resolve();
          } catch (err) {
            return Promise.reject(err instanceof Error ? err : new Error(String(err)));
          }
        },
      },
      {
        leaseUs: options.leaseMs * 1000,
        suspectAfterUs: options.suspectAfterMs * 1000,
        heartbeatUs: options.heartbeatMs * 1000,
        retryUs: 1000,
      },
    );
  }

  /**
   * Starts an embedded cluster in `options.mode` (docs/baselines.md). Bad options throw
   * INVALID_OPTION and start nothing.
   */
  static async start(options?: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(fillOptions(options), systemClock, options?.dataDir);
    try {
      await cluster.startWorkers();
    } catch (err) {
      await cluster.teardown();
      throw err;
    }
    cluster.state = 'running';
    return cluster;
  }

  /**
   * A client for this cluster; clients are cheap and share the cluster's channels. It retries a
   * request that was refused without effect (MOVED, TRYAGAIN: a slot moving, a KN failing over)
   * for up to requestTimeoutMs, and a get that got no answer.
   */
  client(): KvClient {
    // In clover mode any KN thread serves any key, so requests go round-robin over the live ranks
    // (the array is updated in place as KNs join, leave and fail) instead of to a slot's owner.
    return new EmbeddedClient(
      this.channels,
      this.slotMap,
      { clock: this.clock, delayUs: 500, retryForUs: this.options.requestTimeoutMs * 1000 },
      this.options.mode === 'clover'
        ? { feedback: this.feedback, spreadOver: () => this.liveRanks }
        : { feedback: this.feedback },
    );
  }

  /**
   * The RN's answer to a bootstrapping client: the current epoch, a copy of the slot map (slot ->
   * KN thread rank) and the membership (each live KN and its thread ranks). In-process clients from
   * `client()` read the published map directly; a remote client caches this and asks again when a
   * request is refused (MOVED, TRYAGAIN) or unanswered.
   */
  routing(): RoutingSnapshot {
    const { metadataOffset } = openRegion(this.region).geometry;
    return {
      epoch: readMapEpoch(new DataView(this.region), metadataOffset),
      slotMap: Uint16Array.from(this.slotMap),
      kns: this.liveKns(),
    };
  }

  /** Ids of the KNs that serve (or are being given) slots. */
  knIds(): number[] {
    const ids = new Set<number>();
    for (const t of this.threads)
      if (t.state === 'live' && this.liveRanks.includes(t.rank)) ids.add(t.knId);
    return [...ids].sort((a, b) => a - b);
  }

  stats(): ClusterStats {
    return collectStats(
      this.region,
      this.statsBuffer,
      this.threads,
      readFlushCounter(this.dpmFlushes),
    );
  }

  /** @internal The DPM region, for tests that inspect the index and logs directly. */
  get regionForTests(): SharedArrayBuffer {
    return this.region;
  }

  /**
   * Adds a KN (threadsPerKn new threads) at run time and moves about 1/N of the slots to it, evenly
   * from the others (DESIGN.md section 8). Only the moving slots pause, each until its old owner's
   * log is merged; no data moves. Resolves once the new KN serves its slots.
   */
  async addKn(): Promise<KnChangeReport> {
    this.checkRunning('addKn');
    const o = this.options;
    const firstRank = this.threads.length;
    if (firstRank + o.threadsPerKn > this.rankCapacity) {
      throw new DinomoError(
        'INVALID_OPTION',
        `the cluster has room for ${o.maxKns} KNs over its lifetime (options.maxKns); start it with a larger maxKns`,
      );
    }
    const startUs = this.clock.nowUs();
    const knId = this.nextKnId++;
    const ranks = Array.from({ length: o.threadsPerKn }, (_, t) => firstRank + t);
    for (const rank of ranks) this.startKnThread(knId, rank, this.onDeath);
    await Promise.all(ranks.map((rank) => this.waitReady(rank)));
    this.liveRanks.push(...ranks);
    const moves = planAddThreads(this.plannedOwners, ranks).map((move) => this.plan(move));
    const report = this.changeReport(knId, startUs, await Promise.all(moves));
    this.autoscaler?.note('kn-joined', knId);
    return report;
  }

  /**
   * Removes KN `knId` at run time: every slot of its threads moves to the other KNs (each paused
   * until the KN's log is merged), then its threads stop. The last KN cannot be removed.
   */
  async removeKn(knId: number): Promise<KnChangeReport> {
    this.checkRunning('removeKn');
    const ranks = this.liveRanksOf(knId, 'removeKn');
    const startUs = this.clock.nowUs();
    for (const rank of ranks) this.liveRanks.splice(this.liveRanks.indexOf(rank), 1);
    const moves: Array<Promise<MoveReport>> = [];
    for (const rank of ranks) {
      for (const move of planRemoveThread(this.plannedOwners, rank, this.liveRanks)) {
        moves.push(this.plan(move));
      }
    }
    const report = this.changeReport(knId, startUs, await Promise.all(moves));
    await Promise.all(ranks.map((rank) => this.stopThread(rank, 'removed')));
    this.autoscaler?.note('kn-removed', knId);
    return report;
  }

  /**
   * Kills KN `knId` (its threads exit without any protocol, like kill -9), then waits while the
   * M-node notices (heartbeats stop), waits for the KN's leases to end, fences it at the DPM, has its
   * logs merged through their commit offsets and gives its slots to the other KNs. Every write it
   * acknowledged stays readable. Resolves with the detection and failover times.
   */
  async failKn(knId: number): Promise<FailoverReport> {
    this.checkRunning('failKn');
    const ranks = this.liveRanksOf(knId, 'failKn');
    const startUs = this.clock.nowUs();
    // The whole KN dies at once: every thread is marked dead before any is gone.
    const threads = ranks.map((rank) => this.threads[rank] as KnThreadHandle);
    for (const t of threads) {
      t.handle.markStopping();
      this.onThreadDeath(t, 'was killed by failKn');
    }
    await Promise.all(threads.map((t) => t.handle.terminate()));
    const failures = await Promise.all(ranks.map((rank) => this.failureOf(rank)));
    const moves = (await Promise.all(failures.map((f) => f.done))).flat();
    const report = this.changeReport(knId, startUs, moves);
    this.autoscaler?.note('kn-failed', knId);
    const detectUs = Math.max(...failures.map((f) => f.suspectedUs)) - startUs;
    return { ...report, detectMs: detectUs / 1000, failoverMs: report.durationMs };
  }

  /**
   * Stops the cluster: new requests fail with CLOSED, KN threads commit and acknowledge what they
   * staged, the DPM merges what is committed, then every worker exits.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    this.monitor.stop();
    this.autoscaler?.stop();
    // Refuse new requests, send what is batched, and let every request in flight be answered:
    // the KN threads acknowledge staged writes when they commit them.
    const live = this.threads.filter((t) => t.state === 'live');
    await Promise.all(live.map((t) => t.channel.drain('CLOSED', 'the cluster is stopping')));
    await Promise.all(live.map((t) => this.stopThread(t.rank, 'removed'))).catch((err: unknown) =>
      console.error('dinomo: a KN thread did not stop cleanly:', err),
    );
    if (this.manager !== null) {
      this.manager.markStopping();
      this.manager.worker.postMessage({ type: 'stop', id: 0 });
      await this.manager
        .waitFor((m) => (isType(m, 'stopped') ? true : undefined), this.clock, stopTimeoutMs)
        .catch(() => undefined);
    }
    await this.teardown();
    this.state = 'stopped';
  }

  private readonly onDeath = (name: string, why: string): void => this.onWorkerDeath(name, why);

  private async startWorkers(): Promise<void> {
    const onDeath = this.onDeath;
    this.actors.spawn<null, MonitorMessage>(monitorActorName, {
      initialState: null,
      handle: (state, msg, ctx) => {
        ctx.reply(msg.replyTo, this.monitor.heartbeat(msg.rank, msg.incarnation));
        return state;
      },
    });
    this.manager = new WorkerHandle(
      workerScript(import.meta.url, '../dpm/dpm-manager-worker.js'),
      'dpm-manager',
      {
        region: this.region,
        mergeThreads: this.options.mergeThreads,
        durability: this.options.durability,
        flushCounter: this.dpmFlushes,
      },
      [],
      onDeath,
    );
    const toManager = new MessageChannel();
    this.manager.worker.postMessage({ type: 'attach', port: toManager.port2 }, [toManager.port2]);
    this.managerControl = new PortDpmControl(toManager.port1, this.clock, stopTimeoutMs);
    const o = this.options;
    for (let k = 0; k < o.kns; k++) {
      const knId = this.nextKnId++;
      for (let t = 0; t < o.threadsPerKn; t++) {
        const rank = k * o.threadsPerKn + t;
        this.startKnThread(knId, rank, onDeath);
        this.liveRanks.push(rank);
      }
    }
    const managerReady = this.manager.waitFor(
      (m) => (isType(m, 'ready') ? true : undefined),
      this.clock,
      startTimeoutMs,
    );
    await Promise.all([managerReady, ...this.threads.map((t) => this.waitReady(t.rank))]);
    // Chains of ranks that no thread runs now are merged before any client reads (recovery.ts).
    const control = this.managerControl;
    await Promise.all(this.unmerged.map((c) => control.waitMerged(c.rank, c.lsn)));
    this.monitor.start();
    this.autoscaler = new Autoscaler(
      {
        clock: this.clock,
        statsBuffer: this.statsBuffer,
        liveKns: () => this.liveKns(),
        addKn: () => this.addKn(),
        removeKn: (knId) => this.removeKn(knId),
        takeFeedback: () => this.feedback.take(),
      },
      o.autoscale,
      o.policy,
    );
    this.autoscaler.start();
  }

  private liveKns(): Array<{ knId: number; ranks: number[] }> {
    const byKn = new Map<number, number[]>();
    for (const rank of this.liveRanks) {
      const t = this.threads[rank];
      if (t === undefined) continue;
      const list = byKn.get(t.knId) ?? [];
      list.push(rank);
      byKn.set(t.knId, list);
    }
    return [...byKn].map(([knId, ranks]) => ({ knId, ranks }));
  }

  /**
   * The M-node's scaling decisions so far (oldest first, at most 1000), each with the statistics it
   * was taken on and its reason. With `autoscale` off they are what the policy would have done.
   */
  decisions(): DecisionRecord[] {
    return this.autoscaler?.decisions() ?? [];
  }

  private waitReady(rank: number): Promise<unknown> {
    const t = this.threads[rank] as KnThreadHandle;
    return t.handle.waitFor(
      (m) => (isType(m, 'ready') ? true : undefined),
      this.clock,
      startTimeoutMs,
    );
  }

  private controlRef(rank: number) {
    return this.actors.remoteRef<KnControlMessage>(
      actorAddress(
        systemAddress(embeddedLocation(process.pid, knThreadName(rank))),
        knControlActorName,
      ),
    );
  }

  /** Stops one thread gracefully: it answers what it queued, commits, and exits. */
  private async stopThread(rank: number, state: 'removed'): Promise<void> {
    const t = this.threads[rank] as KnThreadHandle;
    t.handle.markStopping();
    t.state = state;
    this.monitor.detector.unregister(rank);
    await this.actors.ask<KnControlMessage, KnStopped>(
      this.controlRef(rank),
      (replyTo) => ({ type: 'stop', replyTo }),
      stopTimeoutMs,
    );
    t.channel.close('MOVED', `KN thread ${rank} was removed`);
  }

  private plan(move: SlotMove): Promise<MoveReport> {
    for (const slot of move.slots) this.plannedOwners[slot] = move.to;
    return this.monitor.move(move);
  }

  private changeReport(knId: number, startUs: number, moves: MoveReport[]): KnChangeReport {
    return {
      knId,
      slotsMoved: moves.reduce((n, m) => n + m.slots, 0),
      durationMs: (this.clock.nowUs() - startUs) / 1000,
      moves,
      maxPauseMs: Math.max(0, ...moves.map((m) => m.pauseMs)),
      maxReadPauseMs: Math.max(0, ...moves.map((m) => m.readPauseMs)),
    };
  }

  private checkRunning(what: string): void {
    if (this.state !== 'running') {
      throw new DinomoError('CLOSED', `${what}: the cluster is ${this.state}`);
    }
  }

  /** The ranks of live KN `knId`; refuses an unknown KN and the last one. */
  private liveRanksOf(knId: number, what: string): number[] {
    const ranks = this.threads
      .filter((t) => t.knId === knId && t.state === 'live' && this.liveRanks.includes(t.rank))
      .map((t) => t.rank);
    if (ranks.length === 0) {
      throw new DinomoError(
        'INVALID_OPTION',
        `${what}: no live KN ${knId}; live: ${this.knIds().join(', ')}`,
      );
    }
    if (ranks.length === this.liveRanks.length) {
      throw new DinomoError(
        'INVALID_OPTION',
        `${what}: KN ${knId} is the last one; add a KN first`,
      );
    }
    return ranks;
  }

  /**
   * The failure detector suspects `rank`: the M-node fails it over (lease wait, fence, merge) and
   * the moves that give its slots to the live threads follow in the queue.
   */
  private declareFailed(rank: number): void {
    const t = this.threads[rank];
    if (t === undefined || !this.liveRanks.includes(rank) || this.failures.has(rank)) return;
    // A KN is one process: when one of its threads is known dead, so are its dead siblings. They
    // fail together, so none of them is given the slots of another.
    const ranks =
      t.state === 'dead'
        ? this.threads
            .filter(
              (s) => s.knId === t.knId && s.state === 'dead' && this.liveRanks.includes(s.rank),
            )
            .map((s) => s.rank)
        : [rank];
    if (t.state === 'live') {
      // Alive but silent (cut off, or stalled): it is fenced, so it can no longer write.
      console.error(`dinomo: KN thread ${rank} missed its heartbeats; failing it over`);
    }
    for (const r of ranks) this.liveRanks.splice(this.liveRanks.indexOf(r), 1);
    const suspectedUs = this.clock.nowUs();
    for (const r of ranks) {
      const failedOver = this.monitor.fail(r);
      const moves =
        this.liveRanks.length === 0
          ? []
          : planRemoveThread(this.plannedOwners, r, this.liveRanks).map((m) => this.plan(m));
      const record: RankFailure = { suspectedUs, done: failedOver.then(() => Promise.all(moves)) };
      this.failures.set(r, record);
      for (const wake of this.failureWaiters.get(r) ?? []) wake(record);
      this.failureWaiters.delete(r);
    }
  }

  private readonly failureWaiters = new Map<number, Array<(f: RankFailure) => void>>();

  /** Resolves once the failure of `rank` was noticed. */
  private failureOf(rank: number): Promise<RankFailure> {
    const known = this.failures.get(rank);
    if (known !== undefined) return Promise.resolve(known);
    return new Promise((resolve) => {
      const list = this.failureWaiters.get(rank) ?? [];
      list.push(resolve);
      this.failureWaiters.set(rank, list);
    });
  }

  /** A KN thread is gone: requests in flight are indeterminate, later ones wait for a new owner. */
  private onThreadDeath(t: KnThreadHandle, why: string): void {
    if (t.state !== 'live') return;
    t.state = 'dead';
    t.channel.disconnect(`KN thread ${t.rank} ${why}`);
  }

  private startKnThread(
    knId: number,
    rank: number,
    onDeath: (name: string, why: string) => void,
  ): void {
    const o = this.options;
    // A member from now on: its first heartbeat (sent before it reports ready) gets its lease. A
    // rank that was failed over in an earlier run of this region restarts as the incarnation its
    // fence allows, which is also the one the worker reads.
    const fenceIndex = fenceWordOffset(openRegion(this.region), rank) / 4;
    const incarnation = currentIncarnation(new Int32Array(this.region), fenceIndex);
    this.monitor.detector.register(rank, incarnation, this.clock.nowUs());
    const { port1, port2 } = new MessageChannel();
    this.manager?.worker.postMessage({ type: 'attach', port: port2 }, [port2]);
    const control = new MessageChannel();
    new PortTransport(
      this.actors,
      control.port1,
      systemAddress(embeddedLocation(process.pid, knThreadName(rank))),
    );
    const data: KnWorkerData & {
      managerPort: typeof port1;
      controlPort: typeof port1;
      mainPid: number;
    } = {
      region: this.region,
      rank,
      knId,
      statsBuffer: this.statsBuffer,
      ...knThreadSettings(o),
      managerPort: port1,
      controlPort: control.port2,
      mainPid: process.pid,
    };
    const handle = new WorkerHandle(
      workerScript(import.meta.url, '../kn/kn-worker.js'),
      `kn-${knId}-thread-${rank}`,
      data,
      [port1, control.port2],
      onDeath,
    );
    const channel = new KnChannel((batch) => postBatch(handle.worker, batch), this.clock, {
      rank,
      requestTimeoutMs: o.requestTimeoutMs,
      inflightMax: o.inflightMaxPerThread,
    });
    handle.worker.on('message', (m: unknown) => {
      if (m instanceof Uint8Array) channel.onResponses(m);
    });
    this.threads[rank] = { knId, rank, handle, channel, state: 'live' };
    this.channels[rank] = channel;
  }

  private onWorkerDeath(name: string, why: string): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    const thread = this.threads.find((t) => t.handle.name === name);
    if (thread !== undefined) {
      // A KN thread died on its own: the failure detector will fail it over like failKn.
      console.error(`dinomo: KN thread ${thread.rank} ${why}`);
      this.onThreadDeath(thread, why);
      return;
    }
    this.state = 'failed';
    this.failure = `${name} ${why}`;
    console.error(`dinomo: worker ${this.failure}`);
    for (const t of this.threads) t.channel.close('WORKER_FAILED', `worker ${this.failure}`);
  }

  private async teardown(): Promise<void> {
    this.monitor.stop();
    this.autoscaler?.stop();
    this.managerControl?.close();
    this.actors.stop();
    const all = [
      ...this.threads.map((t) => t.handle),
      ...(this.manager === null ? [] : [this.manager]),
    ];
    await Promise.all(all.map((h) => h.terminate()));
    for (const t of this.threads) t.channel.close('CLOSED', 'the cluster was stopped');
    this.file?.release();
  }
}

function isType(message: unknown, type: string): boolean {
  return (
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type
  );
}
