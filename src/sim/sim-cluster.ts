import { EmbeddedClient, type KvClient } from '../client/embedded-client.js';
import { KnChannel } from '../client/kn-channel.js';
import type { Mutants } from '../config/mutants.js';
import type { KnToDpmMessage } from '../dpm/dpm-protocol.js';
import { IndexReader } from '../dpm/index-reader.js';
import { fenceWordOffset } from '../dpm/region.js';
import { Dac } from '../kn/dac.js';
import { KnThread } from '../kn/kn-thread.js';
import { PortDpmControl, type ControlPort, type ManagerReply } from '../kn/port-dpm-control.js';
import { threadStatSlots } from '../kn/thread-stats.js';
import { evenSlotMap, planAddThread, planRemoveThread, type SlotMove } from '../routing/index.js';
import type { Simulation } from './event-loop.js';
import { SimDpm, dpmNode, type SimDpmOptions } from './sim-dpm.js';
import { SimFabric } from './sim-fabric.js';
import { SimMonitor } from './sim-monitor.js';
import { SimNetwork, type NetworkOptions } from './sim-network.js';

export interface SimClusterOptions {
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
  readonly threads: KnThread[] = [];
  readonly channels: KnChannel[] = [];
  readonly slotMap: Uint16Array;
  /** Each thread's counters (thread-stats.ts layout). */
  readonly threadStats: Float64Array[] = [];
  /** Each thread's slot states (SlotState), as the thread itself sees them. */
  readonly ownedSlots: Uint8Array[] = [];
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
    for (let rank = 0; rank < options.knThreads; rank++) {
      this.addThread(rank);
      this.liveRanks.push(rank);
    }
    this.monitor = new SimMonitor(
      sim,
      this.network,
      this.dpm,
      this.threads,
      this.slotMap,
      options.reconnectRetryUs,
    );
  }

  /**
   * Adds a KN thread at run time and moves about 1/N of the slots to it. False when the cluster is
   * at maxKnThreads. The thread takes its first log block before it is given slots.
   */
  addKn(): boolean {
    const rank = this.threads.length;
    if (rank >= this.options.maxKnThreads) return false;
    this.addThread(rank);
    this.startAdded(rank);
    return true;
  }

  /** Unexpected errors (bugs) from background steps; the harness fails a run that has any. */
  readonly errors: unknown[] = [];

  /**
   * Starts an added thread (it takes its first log block; retried while the DPM is unreachable),
   * then makes it live and plans the moves that give it its share of the slots.
   */
  private startAdded(rank: number): void {
    const thread = this.threads[rank] as KnThread;
    thread.start().then(
      () => {
        try {
          this.liveRanks.push(rank);
          for (const move of planAddThread(this.plannedOwners, rank)) this.plan(move);
        } catch (err) {
          this.errors.push(err);
        }
      },
      () =>
        this.sim.schedule(this.options.reconnectRetryUs, 'add-kn-retry', () =>
          this.startAdded(rank),
        ),
    );
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
    return Promise.all(this.threads.map((t) => t.start())).then(() => undefined);
  }

  /** A client: it routes over the shared per-thread channels, as the embedded cluster's do. */
  client(): KvClient {
    return new EmbeddedClient(this.channels, this.slotMap, {
      clock: this.sim,
      delayUs: this.options.clientRetryUs,
      retryForUs: this.options.requestTimeoutMs * 1000,
    });
  }

  private addThread(rank: number): void {
    const { sim, network, dpm, options } = this;
    const node = knNode(rank);
    const fabric = new SimFabric(dpm, rank, fenceWordOffset(dpm.region, rank));
    const control = new PortDpmControl(this.controlPort(rank), sim, options.controlTimeoutMs);
    const stats = new Float64Array(threadStatSlots);
    this.threadStats.push(stats);
    const ownedSlots = new Uint8Array(this.slotMap.length);
    this.ownedSlots.push(ownedSlots);
    for (let slot = 0; slot < ownedSlots.length; slot++) {
      ownedSlots[slot] = this.slotMap[slot] === rank ? 1 : 0;
    }
    const channel = new KnChannel(
      (batch) => network.send(clientNode, node, () => thread.enqueue(batch)),
      sim,
      { rank, requestTimeoutMs: options.requestTimeoutMs, inflightMax: options.inflightMax },
    );
    const thread: KnThread = new KnThread(
      {
        fabric,
        dpm: control,
        clock: sim,
        dac: new Dac({ capacityBytes: options.cacheBytesPerThread }),
        index: new IndexReader(fabric, dpm.region.geometry),
        stats,
        ownedSlots,
        send: (batch) => network.send(node, clientNode, () => channel.onResponses(batch)),
        ringDoorbell: () => dpm.ring(),
      },
      {
        rank,
        epoch: 1,
        blockBytes: options.dpm.blockBytes,
        recentBlocks: options.recentBlocks,
        groupCommitUs: options.groupCommitUs,
        groupCommitBytes: options.groupCommitBytes,
        inflightMax: options.inflightMax,
        reconnectRetryUs: options.reconnectRetryUs,
        mutants: options.mutants,
      },
    );
    this.threads.push(thread);
    this.channels.push(channel);
  }

  /** The KN side of a thread's control channel to the DPM manager, over the simulated network. */
  private controlPort(rank: number): ControlPort {
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
            (answer) => network.send(dpmNode, node, () => listener(answer as ManagerReply)),
            msg as KnToDpmMessage,
            incarnation,
          ),
        );
      },
      close: () => undefined,
    };
  }
}
