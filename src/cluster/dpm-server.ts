import { MessageChannel } from 'node:worker_threads';
import {
  ActorSystem,
  TcpTransportServer,
  type ActorContext,
  type ReplyTo,
} from '../actors/index.js';
import {
  dpmActorName,
  dpmSystemLocation,
  type DpmDescription,
  type DpmServerMessage,
} from '../dpm/dpm-server-protocol.js';
import { openFileRegion, openRegion, type FileRegion } from '../dpm/index.js';
import { DinomoError } from '../errors/index.js';
import { FabricHost } from '../fabric/index.js';
import { PortDpmControl } from '../kn/port-dpm-control.js';
import { systemClock, type Clock } from '../time/index.js';
import { workerScript } from '../util/worker-script.js';
import { WorkerHandle } from './worker-handle.js';

export interface DpmServerOptions {
  /** Where the region file lives; formatted when empty, recovered when it holds a region. */
  dataDir: string;
  regionBytes: number;
  blockBytes: number;
  /** KN thread ranks the region has chains for (0 .. ranks - 1). */
  ranks: number;
  provider: 'shm' | 'tcp';
  /** The cluster secret every process proves it holds (at least 16 bytes). */
  secret: string | Uint8Array;
  /** The control port's interface and port; default 127.0.0.1 and a free port. */
  host?: string;
  port?: number;
  mergeThreads?: number;
  /** How long a manager request may take (ms); default 10 000. */
  requestTimeoutMs?: number;
  clock?: Clock;
  /** Called if the manager worker dies: the server is useless then, and the process should exit. */
  onFatal?: (why: string) => void;
}

const startTimeoutMs = 30_000;

/**
 * The DPM as a process of its own (`dinomo dpm`): the region mapped from a file, the manager worker
 * with its merge pool, the fabric host (registrations and progress thread), and a TCP control port
 * where KN processes and the monitor ask for grants, log blocks, merge waits and failovers.
 *
 * The manager speaks its port protocol (dpm-protocol.ts); this server holds one port to it per KN
 * thread rank, carrying that thread's incarnation, so the manager's fence checks apply unchanged.
 */
export class DpmServer {
  readonly port: number;
  readonly description: DpmDescription;
  private readonly file: FileRegion;
  private readonly fabric: FabricHost;
  private readonly manager: WorkerHandle;
  private readonly actors: ActorSystem;
  private readonly server: TcpTransportServer;
  private readonly controls = new Map<number, { incarnation: number; control: PortDpmControl }>();
  private readonly failovers: PortDpmControl;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private stopped = false;

  private constructor(parts: {
    file: FileRegion;
    fabric: FabricHost;
    manager: WorkerHandle;
    actors: ActorSystem;
    server: TcpTransportServer;
    description: DpmDescription;
    clock: Clock;
    timeoutMs: number;
  }) {
    this.file = parts.file;
    this.fabric = parts.fabric;
    this.manager = parts.manager;
    this.actors = parts.actors;
    this.server = parts.server;
    this.port = parts.server.port;
    this.description = parts.description;
    this.clock = parts.clock;
    this.timeoutMs = parts.timeoutMs;
    this.failovers = this.attach(0);
    this.actors.spawn<null, DpmServerMessage>(dpmActorName, {
      initialState: null,
      handle: (state, msg, ctx) => {
        this.handle(msg, ctx);
        return state;
      },
    });
  }

  static async start(options: DpmServerOptions): Promise<DpmServer> {
    const clock = options.clock ?? systemClock;
    const file = openFileRegion(options.dataDir, options.regionBytes, {
      blockBytes: options.blockBytes,
      chainCount: options.ranks,
    });
    const cleanups: (() => unknown)[] = [() => file.release()];
    try {
      const geometry = openRegion(file.region).geometry;
      const fabric = new FabricHost(file.region, {
        provider: options.provider,
        rankCount: geometry.chainCount,
        ...(options.host === undefined ? {} : { host: options.host }),
      });
      cleanups.push(() => fabric.close());
      const manager = new WorkerHandle(
        workerScript(import.meta.url, '../dpm/dpm-manager-worker.js'),
        'dpm-manager',
        { region: file.region, mergeThreads: options.mergeThreads ?? 1 },
        [],
        (_name, why) => options.onFatal?.(`the DPM manager died: ${why}`),
      );
      cleanups.push(() => manager.terminate());
      await manager.waitFor(
        (m) => ((m as { type?: string }).type === 'ready' ? true : undefined),
        clock,
        startTimeoutMs,
      );
      const actors = ActorSystem.start({ ...dpmSystemLocation, clock });
      cleanups.push(() => actors.stop());
      const server = await TcpTransportServer.listen(actors, {
        port: options.port ?? 0,
        secret: options.secret,
        clock,
        ...(options.host === undefined ? {} : { host: options.host }),
      });
      return new DpmServer({
        file,
        fabric,
        manager,
        actors,
        server,
        description: { geometry, provider: options.provider, reopened: file.reopened },
        clock,
        timeoutMs: options.requestTimeoutMs ?? 10_000,
      });
    } catch (err) {
      for (const cleanup of cleanups.reverse()) await cleanup();
      throw err;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.server.close();
    this.actors.stop();
    for (const { control } of this.controls.values()) control.close();
    this.failovers.close();
    this.manager.markStopping();
    this.manager.worker.postMessage({ type: 'stop', id: 0 });
    await this.manager
      .waitFor(
        (m) => ((m as { type?: string }).type === 'stopped' ? true : undefined),
        this.clock,
        this.timeoutMs,
      )
      .catch(() => undefined);
    await this.manager.terminate();
    this.fabric.close();
    this.file.release();
  }

  private handle(msg: DpmServerMessage, ctx: ActorContext<DpmServerMessage>): void {
    switch (msg.type) {
      case 'describe':
        ctx.reply(msg.replyTo, this.description);
        return;
      case 'grant':
        try {
          ctx.reply(msg.replyTo, this.fabric.grant(msg.rank, msg.incarnation));
        } catch (err) {
          ctx.replyError(msg.replyTo, err);
        }
        return;
      case 'alloc':
        this.answer(ctx, msg.replyTo, () =>
          this.control(msg.rank, msg.incarnation).allocBlock(msg.rank),
        );
        return;
      case 'reopen':
        this.answer(ctx, msg.replyTo, () =>
          this.control(msg.rank, msg.incarnation).reopenChain(msg.rank),
        );
        return;
      case 'wait-merged':
        this.answer(ctx, msg.replyTo, () => this.failovers.waitMerged(msg.rank, msg.lsn));
        return;
      case 'failover':
        this.answer(ctx, msg.replyTo, () => {
          // Cut the thread off at the fabric first, so no write of it lands while the manager
          // trims, seals and merges its chain.
          this.fabric.fence(msg.rank, msg.incarnation);
          return this.failovers.failover(msg.rank, msg.incarnation);
        });
        return;
    }
  }

  /** Answers an ask when the promise settles; the actor goes on meanwhile. */
  private answer<T>(
    ctx: ActorContext<DpmServerMessage>,
    replyTo: ReplyTo<T>,
    run: () => Promise<T>,
  ): void {
    let pending: Promise<T>;
    try {
      pending = run();
    } catch (err) {
      ctx.replyError(replyTo, err);
      return;
    }
    pending.then(
      (value) => ctx.reply(replyTo, value),
      (err: unknown) => ctx.replyError(replyTo, err),
    );
  }

  /** The manager port of `rank`'s current incarnation (a newer incarnation replaces the port). */
  private control(rank: number, incarnation: number): PortDpmControl {
    const { chainCount } = this.description.geometry;
    if (!Number.isInteger(rank) || rank < 0 || rank >= chainCount) {
      throw new DinomoError('INVALID_OPTION', `rank ${rank} is outside 0..${chainCount - 1}`);
    }
    const held = this.controls.get(rank);
    if (held !== undefined && held.incarnation === incarnation) return held.control;
    held?.control.close();
    const control = this.attach(incarnation);
    this.controls.set(rank, { incarnation, control });
    return control;
  }

  private attach(incarnation: number): PortDpmControl {
    const channel = new MessageChannel();
    this.manager.worker.postMessage({ type: 'attach', port: channel.port2 }, [channel.port2]);
    return new PortDpmControl(channel.port1, this.clock, this.timeoutMs, incarnation);
  }
}
