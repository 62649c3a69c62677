import { EmbeddedClient, type KvClient } from '../client/embedded-client.js';
import { KnChannel } from '../client/kn-channel.js';
import type { Mutants } from '../config/mutants.js';
import type { KnToDpmMessage } from '../dpm/dpm-protocol.js';
import { IndexReader } from '../dpm/index-reader.js';
import { fenceWordOffset } from '../dpm/region.js';
import { currentIncarnation } from '../fabric/index.js';
import { ChainWalker } from '../kn/clover-chain.js';
import { Dac } from '../kn/dac.js';
import { KnThread } from '../kn/kn-thread.js';
import { PortDpmControl, type ControlPort, type ManagerReply } from '../kn/port-dpm-control.js';
import { threadStatSlots } from '../kn/thread-stats.js';
import { evenSlotMap, planAddThread, planRemoveThread, type SlotMove } from '../routing/index.js';
import type { Simulation } from './event-loop.js';
import { SimDpm, dpmNode, type SimDpmOptions } from './sim-dpm.js';
import { SimFabric } from './sim-fabric.js';
import { SimHost } from './sim-host.js';
import { SimMonitor, monitorNode } from './sim-monitor.js';
import { SimNetwork, type NetworkOptions } from './sim-network.js';
import type { ClusterMode } from '../config/options.js';

export interface SimClusterOptions {
  /** Engine mode (docs/baselines.md); default 'dinomo'. */
  mode?: ClusterMode;
  /** KN threads at start (one chain each). */
  knThreads: number;
  /** Most KN threads ever (chains are formatted for them; addKn adds up to this many). */
  maxKnThreads: number;
  /** Clients retry MOVED and TRYAGAIN this often, for up to requestTimeoutMs. */
  clientRetryUs: number;
  cacheBytesPerThread: number;
  groupCommitUs: number;
  groupCommitBytes: number;
  recentBlocks: number;
  inflightMax: number;
  requestTimeoutMs: number;
  controlTimeoutMs: number;
  reconnectRetryUs: number;
  /** KN threads send a heartbeat this often; the M-node checks for silent threads as often. */
  heartbeatUs: number;
  /** A granted lease lasts this long. */
  leaseUs: number;
  /** A thread silent for longer is suspected, declared failed and failed over. */
  suspectAfterUs: number;
  network: NetworkOptions;
  dpm: Omit<SimDpmOptions, 'chainCount' | 'mutants'>;
  mutants: Mutants;
}

export const clientNode = 'client';

export function knNode(rank: number): string {
  return `kn${rank}`;
}

/**
 * A whole embedded cluster inside one Simulation: the real KnThread (DAC, log writer, index reader,
 * group commit, reconnection), the real DPM manager and merge code behind SimDpm, and the real client
 * side (KnChannel batching and timeouts, EmbeddedClient routing). Only the environment is simulated:
 * the clock, the network between the three kinds of node, and the DPM's memory and process.
 */
export class SimCluster {
  readonly sim: Simulation;
  readonly network: SimNetwork;
  readonly dpm: SimDpm;
  /** The current incarnation of each rank. */
  readonly threads: KnThread[] = [];
  /** The simulated process of each rank's current incarnation. */
  readonly hosts: SimHost[] = [];
  readonly channels: KnChannel[] = [];
  readonly slotMap: Uint16Array;
  /** Counters of every thread incarnation that ever ran (thread-stats.ts layout). */
  readonly threadStats: Float64Array[] = [];
  /** Each rank's slot states (SlotState), as its current incarnation sees them. */
  readonly ownedSlots: Uint8Array[] = [];
  /** Restarts of a failed rank with the same identity. */
  restarts = 0;
  /** Ranks whose new incarnation is starting. */
  private readonly starting = new Set<number>();
  readonly monitor: SimMonitor;
  /** Ranks that own slots or may be given some (removed threads leave this list). */
  readonly liveRanks: number[] = [];
  /**
   * Owners after every queued move has run. Moves are planned against this, never against the
   * published map: planning a second move while the first is queued against the published map gave
   * one slot to two threads (the mergeByArrival mutant exposed it).
   */
  private readonly plannedOwners: Uint16Array;
  private readonly options: SimClusterOptions;

  constructor(sim: Simulation, options: SimClusterOptions) {
    this.sim = sim;
    this.options = options;
    this.network = new SimNetwork(sim, options.network);
    this.dpm = new SimDpm(sim, {
      ...options.dpm,
      chainCount: options.maxKnThreads,
      mutants: options.mutants,
    });
    this.slotMap = evenSlotMap(options.knThreads);
    this.plannedOwners = Uint16Array.from(this.slotMap);
    this.monitor = new SimMonitor(
      sim,
      this.network,
      this.dpm,
      (rank) => {
        const thread = this.threads[rank];
        const host = this.hosts[rank];
        return thread === undefined || host === undefined ? undefined : { thread, host };
      },
      this.slotMap,
      {
        retryUs: options.reconnectRetryUs,
        heartbeatUs: options.heartbeatUs,
        leaseUs: options.leaseUs,
        suspectAfterUs: options.suspectAfterUs,
        mutants: options.mutants,
      },
      (rank) => this.declareFailed(rank),
    );
    for (let rank = 0; rank < options.knThreads; rank++) {
      this.addThread(rank, 0, options.leaseUs, true);
      this.liveRanks.push(rank);
      this.monitor.detector.register(rank, 0, 0);
    }
  }

  /**
   * Adds a KN thread at run time and moves about 1/N of the slots to it. False when the cluster is
   * at maxKnThreads. The thread takes its first log block before it is given slots.
   */
  addKn(): boolean {
    const rank = this.threads.length;
    if (rank >= this.options.maxKnThreads) return false;
    this.addThread(rank, 0, 0, false);
    this.starting.add(rank);
    this.startAdded(rank);
    return true;
  }

  /** Kills KN thread `rank`'s process: it stops at once; the failure detector notices. */
  failKn(rank: number): boolean {
    const host = this.hosts[rank];
    if (host === undefined || host.crashed) return false;
    this.sim.mix(`fail-kn:${rank}`);
    host.crash();
    return true;
  }

  /** Stops KN thread `rank` for `durationUs` (a GC pause or a stopped VM); then it runs on. */
  pauseKn(rank: number, durationUs: number): boolean {
    const host = this.hosts[rank];
    if (host === undefined || host.crashed || host.paused) return false;
    this.sim.mix(`pause-kn:${rank}`);
    host.pause();
    this.sim.schedule(durationUs, 'pause-end', () => host.resume());
    return true;
  }

  /**
   * Starts a new incarnation of a failed rank with the same identity (after its failover: its chain
   * was merged, so nothing it acknowledged is lost), while the old one may still be alive, as when an
   * orchestrator replaces a process it cannot reach. It opens its endpoint with the incarnation the
   * fence now allows, reopens its chain, and is given slots like an added thread.
   */
  restartKn(rank: number): boolean {
    const host = this.hosts[rank];
    const thread = this.threads[rank];
    if (host === undefined || thread === undefined) return false;
    // The old incarnation may still run (paused, or cut off): fencing keeps it harmless.
    if (!this.monitor.isFailedOver(rank) || this.liveRanks.includes(rank)) return false;
    if (this.starting.has(rank)) return false;
    this.starting.add(rank);
    this.restarts++;
    this.sim.mix(`restart-kn:${rank}`);
    const words = this.dpm.region.i32;
    const incarnation = currentIncarnation(words, fenceWordOffset(this.dpm.region, rank) / 4);
    this.addThread(rank, incarnation, 0, false);
    this.startAdded(rank, incarnation);
    return true;
  }

  /** Restarts `rank` (restartKn) once its failover finished, polling every `pollUs`. */
  restartAfterFailover(rank: number, pollUs: number): void {
    let tries = 0;
    const attempt = (): void => {
      if (this.restartKn(rank) || ++tries > 100) return;
      this.sim.schedule(pollUs, 'restart-kn-retry', attempt);
    };
    this.sim.schedule(pollUs, 'restart-kn', attempt);
  }

  /** The failure detector suspects `rank`: fail it over and move its slots to the live threads. */
  private declareFailed(rank: number): void {
    this.sim.mix(`suspect:${rank}`);
    const at = this.liveRanks.indexOf(rank);
    if (at >= 0) this.liveRanks.splice(at, 1);
    this.monitor.fail(rank);
    if (this.liveRanks.length === 0) {
      // Nobody can take the slots: like an orchestrator restarting the pod, bring the rank back.
      this.restartAfterFailover(rank, this.options.heartbeatUs);
      return;
    }
    for (const move of planRemoveThread(this.plannedOwners, rank, this.liveRanks)) this.plan(move);
  }

  /** Unexpected errors (bugs) from background steps; the harness fails a run that has any. */
  readonly errors: unknown[] = [];

  /**
   * Starts an added thread (it takes its first log block; retried while the DPM is unreachable),
   * then makes it live and plans the moves that give it its share of the slots.
   */
  private startAdded(rank: number, incarnation = 0): void {
    const thread = this.threads[rank] as KnThread;
    const host = this.hosts[rank] as SimHost;
    thread.start().then(
      () => this.join(rank, thread, host, incarnation),
      // start() retries transient DPM failures itself; anything else is a bug to report.
      (err: unknown) => host.run(() => this.errors.push(err)),
    );
  }

  /**
   * A started thread joins: it tells the M-node, which makes it live and plans the moves that give
   * it slots. The message is sent again until it is acknowledged (it may be lost in a partition);
   * the M-node handles it once.
   */
  private join(rank: number, thread: KnThread, host: SimHost, incarnation: number): void {
    const node = knNode(rank);
    let joined = false;
    const onJoin = (): void => {
      if (this.starting.has(rank) && this.threads[rank] === thread) {
        try {
          this.starting.delete(rank);
          this.monitor.rejoined(rank, incarnation);
          this.liveRanks.push(rank);
          const own: number[] = [];
          this.plannedOwners.forEach((owner, slot) => owner === rank && own.push(slot));
          // A restarted sole survivor still owns its slots: it takes them back in a new epoch.
          if (own.length > 0) this.plan({ slots: own, from: rank, to: rank });
          else for (const move of planAddThread(this.plannedOwners, rank)) this.plan(move);
        } catch (err) {
          this.errors.push(err);
        }
      }
      this.network.send(monitorNode, node, () =>
        host.run(() => {
          if (joined) return;
          joined = true;
          this.heartbeat(rank, thread, host, incarnation);
        }),
      );
    };
    const attempt = (): void => {
      if (joined || thread.retired !== null) return;
      this.network.send(node, monitorNode, onJoin);
      host.clock.setTimer(this.options.heartbeatUs, attempt);
    };
    attempt();
  }

  /**
   * The heartbeat loop of one thread incarnation: a heartbeat stamped with its send time; a grant
   * extends the lease from that time, a refusal retires the incarnation (it was declared failed).
   */
  private heartbeat(rank: number, thread: KnThread, host: SimHost, incarnation: number): void {
    const { network, options } = this;
    const node = knNode(rank);
    host.clock.setTimer(options.heartbeatUs, () => {
      if (thread.retired !== null) return;
      const sentUs = host.clock.nowUs();
      network.send(node, monitorNode, () =>
        this.monitor.heartbeat(rank, incarnation, (answer) =>
          network.send(monitorNode, node, () =>
            host.run(() => {
              if (answer.granted) thread.extendLease(sentUs + answer.leaseUs);
              else thread.retire(answer.reason);
            }),
          ),
        ),
      );
      this.heartbeat(rank, thread, host, incarnation);
    });
  }

  /** Moves every slot of `rank` to the other live threads; it then serves nothing. */
  removeKn(rank: number): boolean {
    const survivors = this.liveRanks.filter((r) => r !== rank);
    if (survivors.length === 0 || !this.liveRanks.includes(rank)) return false;
    this.liveRanks.splice(this.liveRanks.indexOf(rank), 1);
    for (const move of planRemoveThread(this.plannedOwners, rank, survivors)) this.plan(move);
    return true;
  }

  /** Moves one slot to another live thread (a rebalance of a single slot). */
  moveSlot(slot: number, to: number): boolean {
    const from = this.plannedOwners[slot] as number;
    if (from === to || !this.liveRanks.includes(to)) return false;
    this.plan({ slots: [slot], from, to });
    return true;
  }

  /** A one-line state summary for diagnostics of a stuck run. */
  describe(): string {
    const threads = this.threads.map((t, rank) => {
      const host = this.hosts[rank];
      const state = host?.crashed === true ? 'crashed' : host?.paused === true ? 'paused' : 'up';
      const owned = this.ownedSlots[rank]?.filter((s) => s === 1).length ?? 0;
      return `${rank}:${state}${t.retired === null ? '' : '/retired'}:${owned} slots`;
    });
    const orphan = this.slotMap.filter(
      (owner, slot) => this.ownedSlots[owner]?.[slot] !== 1,
    ).length;
    return `live [${this.liveRanks.join(',')}]; threads ${threads.join(' ')}; slots whose mapped owner does not serve them ${orphan}; monitor ${this.monitor.describe()}`;
  }

  /** The owner a slot will have once every queued move has run. */
  plannedOwner(slot: number): number {
    return this.plannedOwners[slot] as number;
  }

  private plan(move: SlotMove): void {
    for (const slot of move.slots) this.plannedOwners[slot] = move.to;
    this.monitor.move(move);
  }

  /** Takes every thread's first log block; the simulation must run meanwhile. */
  start(): Promise<void> {
    return Promise.all(this.threads.map((t) => t.start())).then(() => {
      this.threads.forEach((thread, rank) =>
        this.heartbeat(rank, thread, this.hosts[rank] as SimHost, 0),
      );
    });
  }

  /**
   * A client: it routes over the shared per-thread channels, as the embedded cluster's do, with its
   * own cached copy of the slot map (refreshed when a request is refused), as a remote client has.
   */
  client(): KvClient {
    return new EmbeddedClient(
      this.channels,
      this.slotMap,
      {
        clock: this.sim,
        delayUs: this.options.clientRetryUs,
        retryForUs: this.options.requestTimeoutMs * 1000,
      },
      this.options.mode === 'clover' ? { spreadOver: () => this.liveRanks } : { cacheMap: true },
    );
  }

  /**
   * Builds incarnation `incarnation` of thread `rank` in a fresh simulated process. Its channel (the
   * clients' connection to the rank) is made once per rank and reaches whichever incarnation is
   * current when a message arrives.
   */
  private addThread(
    rank: number,
    incarnation: number,
    leaseUntilUs: number,
    ownsInitialSlots: boolean,
  ): void {
    const { sim, network, dpm, options } = this;
    const node = knNode(rank);
    const host = new SimHost(sim);
    this.hosts[rank] = host;
    const fabric = new SimFabric(dpm, rank, fenceWordOffset(dpm.region, rank), incarnation);
    const control = new PortDpmControl(
      this.controlPort(rank, host),
      host.clock,
      options.controlTimeoutMs,
      incarnation,
    );
    const stats = new Float64Array(threadStatSlots);
    this.threadStats.push(stats);
    const clover = options.mode === 'clover';
    const ownedSlots = new Uint8Array(this.slotMap.length);
    this.ownedSlots[rank] = ownedSlots;
    if (ownsInitialSlots) {
      for (let slot = 0; slot < ownedSlots.length; slot++) {
        ownedSlots[slot] = this.slotMap[slot] === rank ? 1 : 0;
      }
    }
    let channel = this.channels[rank];
    if (channel === undefined) {
      channel = new KnChannel(
        (batch) =>
          network.send(clientNode, node, () =>
            this.hosts[rank]?.run(() => this.threads[rank]?.enqueue(batch)),
          ),
        sim,
        { rank, requestTimeoutMs: options.requestTimeoutMs, inflightMax: options.inflightMax },
      );
      this.channels[rank] = channel;
    }
    const responses = channel;
    this.threads[rank] = new KnThread(
      {
        fabric,
        dpm: control,
        clock: host.clock,
        dac: new Dac({ capacityBytes: options.cacheBytesPerThread, shortcutsOnly: clover }),
        index: new IndexReader(fabric, dpm.region.geometry),
        chain: new ChainWalker(fabric, dpm.region.geometry),
        stats,
        ownedSlots,
        send: (batch) => network.send(node, clientNode, () => responses.onResponses(batch)),
        ringDoorbell: () => dpm.ring(),
      },
      {
        mode: options.mode ?? 'dinomo',
        rank,
        epoch: 1,
        blockBytes: options.dpm.blockBytes,
        recentBlocks: options.recentBlocks,
        groupCommitUs: options.groupCommitUs,
        groupCommitBytes: options.groupCommitBytes,
        inflightMax: options.inflightMax,
        reconnectRetryUs: options.reconnectRetryUs,
        leaseUntilUs,
        mutants: options.mutants,
      },
    );
  }

  /**
   * The KN side of a thread's control channel to the DPM manager, over the simulated network;
   * answers reach the thread only through its process (`host`).
   */
  private controlPort(rank: number, host: SimHost): ControlPort {
    const { network, dpm } = this;
    const node = knNode(rank);
    let listener: (reply: ManagerReply) => void = () => undefined;
    return {
      on: (_event, l) => {
        listener = l;
      },
      postMessage: (msg) => {
        const incarnation = dpm.incarnation;
        network.send(node, dpmNode, () =>
          dpm.deliver(
            (answer) =>
              network.send(dpmNode, node, () => host.run(() => listener(answer as ManagerReply))),
            msg as KnToDpmMessage,
            incarnation,
          ),
        );
      },
      close: () => undefined,
    };
  }
}
