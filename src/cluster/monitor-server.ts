import {
  ActorSystem,
  TcpLink,
  TcpTransportServer,
  actorAddress,
  systemAddress,
  type ActorContext,
  type ActorRef,
} from '../actors/index.js';
import type { FilledOptions } from '../config/index.js';
import { dpmSystemLocation } from '../dpm/dpm-server-protocol.js';
import { DinomoError } from '../errors/index.js';
import {
  knControlActorName,
  knProcessThreadLocation,
  monitorActorName,
  type KnControlMessage,
  type KnStopped,
} from '../kn/index.js';
import { ActorDpmControl } from '../kn/actor-dpm-control.js';
import {
  encodeSlotMap,
  evenSlotMap,
  monitorSystemLocation,
  planAddThreads,
  planRemoveThread,
  type KnEndpoint,
  type RoutingTable,
  type SlotMove,
} from '../routing/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { ElasticMonitor, knControlSteps, type MoveReport } from './elastic-monitor.js';
import { knThreadSettings } from './kn-settings.js';
import type { HostPort, JoinAnswer, MonitorServerMessage } from './monitor-protocol.js';

export interface MonitorServerOptions {
  /** The DPM server's control port. */
  dpm: HostPort;
  secret: string | Uint8Array;
  /** The monitor's own control port; default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  /** kns, threadsPerKn, maxKns, the lease and heartbeat times and the KN thread settings. */
  options: FilledOptions;
  clock?: Clock;
}

/** How long the monitor waits for the DPM server when it starts. */
const connectTimeoutMs = 10_000;

interface RankMember {
  knId: number;
  state: 'joining' | 'live' | 'dead' | 'removed';
  endpoint: { host: string; port: number } | null;
}

/**
 * The M-node and RN of a multi-process cluster (`dinomo monitor`): the same ElasticMonitor as the
 * embedded cluster (reconfiguration steps, failure detector, leases), with its outputs performed on
 * other processes. KN threads reach it over TCP for their leases; KN processes join and leave
 * through it; clients ask it for the routing table. It keeps the slot map in the DPM's cluster
 * metadata (through the DPM server), so a move's epoch is durable before anyone acts on it.
 *
 * Ranks: the first `kns` KNs to join get the ranks of the initial slot map (0 .. kns*T-1); later
 * KNs get fresh ranks and about 1/N of the slots each. A rank is never given to a second KN in one
 * run. A KN is one process: when one of its threads is suspected, all of them are failed over.
 */
export class MonitorServer {
  readonly port: number;
  private readonly actors: ActorSystem;
  private readonly server: TcpTransportServer;
  private readonly dpmLink: TcpLink;
  private readonly dpm: ActorDpmControl;
  private readonly o: FilledOptions;
  private readonly clock: Clock;
  private readonly dpmAddress: HostPort;
  private readonly monitor: ElasticMonitor;
  private readonly slotMap: Uint16Array;
  private readonly plannedOwners: Uint16Array;
  private readonly members = new Map<number, RankMember>();
  /** Ranks that own slots or may be given some. */
  private readonly liveRanks: number[] = [];
  /** Rank blocks of the initial slot map not yet handed to a KN (first rank of each). */
  private readonly initialBlocks: number[] = [];
  private readonly rankCapacity: number;
  private readonly blockBytes: number;
  private nextFreshRank: number;
  private nextKnId = 1;
  private epoch: number;
  private stopped = false;

  private constructor(parts: {
    actors: ActorSystem;
    dpmLink: TcpLink;
    dpm: ActorDpmControl;
    options: MonitorServerOptions;
    epoch: number;
    slotMap: Uint16Array;
    chainCount: number;
    blockBytes: number;
    server: TcpTransportServer;
  }) {
    const { options } = parts;
    this.actors = parts.actors;
    this.dpmLink = parts.dpmLink;
    this.dpm = parts.dpm;
    this.server = parts.server;
    this.port = parts.server.port;
    this.o = options.options;
    this.clock = options.clock ?? systemClock;
    this.dpmAddress = options.dpm;
    this.epoch = parts.epoch;
    this.slotMap = parts.slotMap;
    this.plannedOwners = Uint16Array.from(parts.slotMap);
    this.rankCapacity = parts.chainCount;
    this.blockBytes = parts.blockBytes;
    const t = this.o.threadsPerKn;
    for (let k = 0; k < this.o.kns; k++) this.initialBlocks.push(k * t);
    for (let rank = 0; rank < this.o.kns * t; rank++) this.liveRanks.push(rank);
    this.nextFreshRank = this.o.kns * t;
    this.monitor = this.newElasticMonitor();
    this.actors.spawn<null, MonitorServerMessage>(monitorActorName, {
      initialState: null,
      handle: (state, msg, ctx) => {
        this.handle(msg, ctx);
        return state;
      },
    });
    this.monitor.start();
  }

  /**
   * Connects to the DPM server, records this run's slot map (kns × threadsPerKn ranks, evenly) under
   * a new epoch, and opens the control port. Fails with UNAVAILABLE if the DPM server does not
   * answer, INVALID_OPTION if its region has too few chains for maxKns × threadsPerKn ranks.
   */
  static async start(options: MonitorServerOptions): Promise<MonitorServer> {
    const o = options.options;
    if (o.mode !== 'dinomo') {
      // Clover mode needs remote clients to spread requests over every KN thread, which the RN's
      // routing table cannot tell them yet, and DINOMO-N is built and tested against the embedded
      // cluster's DPM manager first. Refusing before anything starts beats running an engine that
      // only looks like the baseline.
      throw new DinomoError(
        'NOT_SUPPORTED',
        `mode '${o.mode}' runs only in the embedded cluster (Cluster.start({ mode: '${o.mode}' }) ` +
          `or dinomo bench --mode ${o.mode}); the multi-process cluster runs mode 'dinomo'`,
      );
    }
    const clock = options.clock ?? systemClock;
    const actors = ActorSystem.start({ ...monitorSystemLocation, clock });
    const dpmLink = new TcpLink(actors, {
      ...options.dpm,
      secret: options.secret,
      clock,
      expectedPeer: systemAddress(dpmSystemLocation),
    });
    let server: TcpTransportServer | null = null;
    try {
      await dpmLink.waitUp(connectTimeoutMs);
      const dpm = new ActorDpmControl(dpmLink, 0, o.requestTimeoutMs);
      const { geometry } = await dpm.describe();
      const capacity = Math.max(o.maxKns, o.kns) * o.threadsPerKn;
      if (capacity > geometry.chainCount) {
        throw new DinomoError(
          'INVALID_OPTION',
          `${capacity} KN thread ranks (maxKns × threadsPerKn) need as many chains, and the DPM ` +
            `region has ${geometry.chainCount}; start dinomo dpm with --ranks ${capacity} or more`,
        );
      }
      // Writes of this run must be newer than every version earlier runs left in the region.
      const { epoch: lastEpoch } = await dpm.readMap();
      const epoch = lastEpoch + 1;
      const slotMap = evenSlotMap(o.kns * o.threadsPerKn);
      await dpm.writeMap(encodeSlotMap(slotMap), epoch);
      server = await TcpTransportServer.listen(actors, {
        port: options.port ?? 0,
        secret: options.secret,
        clock,
        ...(options.host === undefined ? {} : { host: options.host }),
      });
      return new MonitorServer({
        actors,
        dpmLink,
        dpm,
        options,
        epoch,
        slotMap,
        chainCount: geometry.chainCount,
        blockBytes: geometry.blockBytes,
        server,
      });
    } catch (err) {
      await server?.close();
      dpmLink.close();
      actors.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.monitor.stop();
    await this.server.close();
    this.dpmLink.close();
    this.actors.stop();
  }

  /** The RN's answer: the slot map and the data ports of the KN threads that serve. */
  routing(): RoutingTable {
    const endpoints: KnEndpoint[] = [];
    for (const rank of this.liveRanks) {
      const m = this.members.get(rank);
      if (m?.state === 'live' && m.endpoint !== null)
        endpoints.push({ rank, knId: m.knId, ...m.endpoint });
    }
    return { epoch: this.epoch, slotMap: encodeSlotMap(this.slotMap), endpoints };
  }

  private handle(msg: MonitorServerMessage, ctx: ActorContext<MonitorServerMessage>): void {
    switch (msg.type) {
      case 'heartbeat':
        ctx.reply(msg.replyTo, this.monitor.heartbeat(msg.rank, msg.incarnation));
        return;
      case 'routing':
        ctx.reply(msg.replyTo, this.routing());
        return;
      case 'join':
        this.join(msg.threads).then(
          (answer) => ctx.reply(msg.replyTo, answer),
          (err: unknown) => ctx.replyError(msg.replyTo, err),
        );
        return;
      case 'joined':
        try {
          this.joined(msg.knId, msg.endpoints);
          ctx.reply(msg.replyTo, null);
        } catch (err) {
          ctx.replyError(msg.replyTo, err);
        }
        return;
      case 'leave':
        this.leave(msg.knId).then(
          () => ctx.reply(msg.replyTo, null),
          (err: unknown) => ctx.replyError(msg.replyTo, err),
        );
        return;
    }
  }

  /** Gives a joining KN an id and its ranks, and starts watching their heartbeats. */
  private async join(threads: number): Promise<JoinAnswer> {
    const t = this.o.threadsPerKn;
    if (threads !== t) {
      throw new DinomoError(
        'INVALID_OPTION',
        `this cluster runs ${t} threads per KN; start dinomo kn with --threads ${t}`,
      );
    }
    const first = this.initialBlocks.shift() ?? this.takeFreshBlock();
    const knId = this.nextKnId++;
    const ranks = Array.from({ length: t }, (_, i) => first + i);
    // A rank that was failed over in an earlier run restarts as the incarnation its fence allows;
    // the KN thread asks the DPM the same question and gets the same answer.
    const incarnations = await Promise.all(ranks.map((rank) => this.dpm.incarnationOf(rank)));
    ranks.forEach((rank, i) => {
      this.members.set(rank, { knId, state: 'joining', endpoint: null });
      this.monitor.detector.register(rank, incarnations[i] ?? 0, this.clock.nowUs());
    });
    const settings = { ...knThreadSettings(this.o), blockBytes: this.blockBytes };
    return { knId, ranks, dpm: this.dpmAddress, settings };
  }

  private takeFreshBlock(): number {
    const t = this.o.threadsPerKn;
    if (this.nextFreshRank + t > this.rankCapacity) {
      throw new DinomoError(
        'INVALID_OPTION',
        `no KN thread ranks left (the DPM region has ${this.rankCapacity} chains); restart the ` +
          'cluster with a larger --max-kns and dinomo dpm --ranks',
      );
    }
    const first = this.nextFreshRank;
    this.nextFreshRank += t;
    return first;
  }

  /** The KN's threads serve: clients may reach them, and a KN beyond the initial ones gets slots. */
  private joined(
    knId: number,
    endpoints: Array<{ rank: number; host: string; port: number }>,
  ): void {
    const ranks = this.ranksOf(knId, 'joining');
    if (ranks.length === 0 || endpoints.length !== ranks.length) {
      throw new DinomoError(
        'INVALID_OPTION',
        `KN ${knId} is not joining with ${endpoints.length} threads`,
      );
    }
    for (const e of endpoints) {
      const m = this.members.get(e.rank);
      if (m?.knId !== knId)
        throw new DinomoError('INVALID_OPTION', `rank ${e.rank} is not KN ${knId}'s`);
      m.endpoint = { host: e.host, port: e.port };
      m.state = 'live';
    }
    const fresh = ranks.filter((rank) => !this.liveRanks.includes(rank));
    if (fresh.length === 0) return;
    this.liveRanks.push(...fresh);
    for (const move of planAddThreads(this.plannedOwners, fresh)) void this.plan(move);
  }

  /** Moves every slot of KN `knId` to the other KNs, then stops its threads. */
  private async leave(knId: number): Promise<void> {
    const ranks = this.ranksOf(knId, 'live').filter((rank) => this.liveRanks.includes(rank));
    if (ranks.length === 0) throw new DinomoError('INVALID_OPTION', `no live KN ${knId}`);
    if (ranks.length === this.liveRanks.length) {
      throw new DinomoError('INVALID_OPTION', `KN ${knId} is the last one; add a KN first`);
    }
    for (const rank of ranks) this.liveRanks.splice(this.liveRanks.indexOf(rank), 1);
    const moves: Array<Promise<MoveReport>> = [];
    for (const rank of ranks) {
      for (const move of planRemoveThread(this.plannedOwners, rank, this.liveRanks)) {
        moves.push(this.plan(move));
      }
    }
    await Promise.all(moves);
    await Promise.all(
      ranks.map(async (rank) => {
        const m = this.members.get(rank);
        if (m !== undefined) m.state = 'removed';
        this.monitor.detector.unregister(rank);
        await this.actors.ask<KnControlMessage, KnStopped>(
          this.controlRef(rank),
          (replyTo) => ({ type: 'stop', replyTo }),
          this.o.requestTimeoutMs,
        );
      }),
    );
  }

  /**
   * The detector suspects `rank`: its whole KN (one process) is failed over: lease wait, fence,
   * merge of its logs, and its slots to the live threads.
   */
  private declareFailed(rank: number): void {
    const member = this.members.get(rank);
    if (member === undefined || member.state === 'dead' || member.state === 'removed') return;
    const ranks = [...this.members]
      .filter(([, m]) => m.knId === member.knId && (m.state === 'live' || m.state === 'joining'))
      .map(([r]) => r);
    console.error(
      `dinomo: KN ${member.knId} (threads ${ranks.join(', ')}) missed its heartbeats; failing it over`,
    );
    for (const r of ranks) {
      (this.members.get(r) as RankMember).state = 'dead';
      const index = this.liveRanks.indexOf(r);
      if (index >= 0) this.liveRanks.splice(index, 1);
    }
    for (const r of ranks) {
      void this.monitor.fail(r);
      if (this.liveRanks.length === 0) continue;
      for (const move of planRemoveThread(this.plannedOwners, r, this.liveRanks))
        void this.plan(move);
    }
  }

  private plan(move: SlotMove): Promise<MoveReport> {
    for (const slot of move.slots) this.plannedOwners[slot] = move.to;
    return this.monitor.move(move);
  }

  private ranksOf(knId: number, state: RankMember['state']): number[] {
    return [...this.members]
      .filter(([, m]) => m.knId === knId && m.state === state)
      .map(([r]) => r);
  }

  private controlRef(rank: number): ActorRef<KnControlMessage> {
    const knId = this.members.get(rank)?.knId ?? 0;
    return {
      address: actorAddress(systemAddress(knProcessThreadLocation(knId, rank)), knControlActorName),
    };
  }

  private newElasticMonitor(): ElasticMonitor {
    const timeoutMs = this.o.requestTimeoutMs;
    return new ElasticMonitor(
      {
        clock: this.clock,
        initialEpoch: this.epoch,
        slotMap: this.slotMap,
        ...knControlSteps(this.actors, (rank) => this.controlRef(rank), timeoutMs),
        failover: async (rank, incarnation) => {
          await this.dpm.failover(rank, incarnation);
        },
        reachable: (rank) => {
          const state = this.members.get(rank)?.state;
          return state === 'live' || state === 'joining';
        },
        onSuspect: (rank) => this.declareFailed(rank),
        persistOwners: async (slots, owner, epoch) => {
          await this.dpm.writeOwners(slots, owner, epoch);
          this.epoch = Math.max(this.epoch, epoch);
        },
      },
      {
        leaseUs: this.o.leaseMs * 1000,
        suspectAfterUs: this.o.suspectAfterMs * 1000,
        heartbeatUs: this.o.heartbeatMs * 1000,
        retryUs: 1000,
      },
    );
  }
}
