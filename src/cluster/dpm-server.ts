import { MessageChannel } from 'node:worker_threads';
import {
  ActorSystem,
  TcpTransportServer,
  type ActorContext,
  type ReplyTo,
} from '../actors/index.js';
import { readMapEpoch, writeSlotMap, writeSlotOwners } from '../dpm/cluster-metadata.js';
import {
  dpmActorName,
  dpmSystemLocation,
  slotMapBytes,
  type DpmDescription,
  type DpmServerMessage,
} from '../dpm/dpm-server-protocol.js';
import {
  Metadata,
  fenceTableOffset,
  fenceWordOffset,
  openFileRegion,
  openRegion,
  unmergedChains,
  type FileRegion,
  type Region,
} from '../dpm/index.js';
import {
  fileRegionFlush,
  newFlushCounter,
  noFlush,
  type RegionFlush,
} from '../dpm/region-flush.js';
import { DinomoError } from '../errors/index.js';
import { currentIncarnation } from '../fabric/fence.js';
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
  /**
   * 'sync': the DPM flushes (msync) its own records where recovery needs them: the whole region
   * once at start, the manager's allocations and failovers, merge and cleaning tasks, and the slot
   * map and epoch of `write-owners` and `write-map` before answering (docs/architecture.md,
   * "Durability"). KN commits arrive over the fabric and reach the region's memory (the file's page
   * cache) only: they survive the crash of any process, not of the operating system. Default
   * 'async': no flushes.
   */
  durability?: 'async' | 'sync';
  clock?: Clock;
  /** Called if the manager worker dies: the server is useless then, and the process should exit. */
  onFatal?: (why: string) => void;
}

const startTimeoutMs = 30_000;

/**
 * The manager's idle re-check of the chains (ms). KN threads in other processes cannot ring the
 * manager's doorbell after a commit, so this bounds how long a commit waits for its merge.
 */
const remoteRecheckMs = 1;

/** The highest incarnation a fence word holds (fence.ts: 31 bits). */
const incarnationMax = 0x7fff_ffff;
const slotCount = slotMapBytes / 2;

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
  private readonly region: Region;
  private readonly fabric: FabricHost;
  /**
   * Per rank, the lowest incarnation the fabric still grants (what this server fenced at the
   * fabric, seeded from the region's fence words at start). It can be ahead of the fence word for
   * the moment between a failover's fabric fence and the manager's.
   */
  private readonly fabricFloor = new Map<number, number>();
  /** Flushes the slot map and epoch with durability 'sync'; nothing with 'async'. */
  private readonly flushMetadata: RegionFlush;
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
    region: Region;
    flushMetadata: RegionFlush;
    fabric: FabricHost;
    manager: WorkerHandle;
    actors: ActorSystem;
    server: TcpTransportServer;
    description: DpmDescription;
    clock: Clock;
    timeoutMs: number;
  }) {
    this.file = parts.file;
    this.region = parts.region;
    this.flushMetadata = parts.flushMetadata;
    this.fabric = parts.fabric;
    this.manager = parts.manager;
    this.actors = parts.actors;
    this.server = parts.server;
    this.port = parts.server.port;
    this.description = parts.description;
    this.clock = parts.clock;
    this.timeoutMs = parts.timeoutMs;
    // A restarted DPM knows the fences only from the region: the fabric must refuse what they fence.
    for (let rank = 0; rank < this.region.geometry.chainCount; rank++) {
      const allowed = currentIncarnation(this.region.i32, fenceWordOffset(this.region, rank) / 4);
      if (allowed > 0) this.fenceFabric(rank, allowed - 1);
    }
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
    const durability = options.durability ?? 'async';
    if (durability !== 'async' && durability !== 'sync') {
      throw new DinomoError(
        'INVALID_OPTION',
        `durability must be 'async' or 'sync', not ${JSON.stringify(durability)}`,
      );
    }
    // KN processes survive a DPM restart, and a fenced one must stay fenced: keep the fence words.
    const file = openFileRegion(
      options.dataDir,
      options.regionBytes,
      { blockBytes: options.blockBytes, chainCount: options.ranks },
      { keepFences: true },
    );
    const cleanups: (() => unknown)[] = [() => file.release()];
    try {
      const region = openRegion(file.region);
      const { geometry } = region;
      const { metadataOffset } = geometry;
      const flushCounter = newFlushCounter();
      let flushMetadata: RegionFlush = noFlush;
      if (durability === 'sync') {
        // The region the manager starts from (recovered, or just formatted) is in the file before
        // anything is written on top of it; later, each slot map write flushes its own range.
        fileRegionFlush(file.region, flushCounter)();
        flushMetadata = fileRegionFlush(
          file.region,
          flushCounter,
          metadataOffset,
          fenceTableOffset(metadataOffset) - metadataOffset,
        );
      }
      const fabric = new FabricHost(file.region, {
        provider: options.provider,
        rankCount: geometry.chainCount,
        ...(options.host === undefined ? {} : { host: options.host }),
      });
      cleanups.push(() => fabric.close());
      const manager = new WorkerHandle(
        workerScript(import.meta.url, '../dpm/dpm-manager-worker.js'),
        'dpm-manager',
        {
          region: file.region,
          mergeThreads: options.mergeThreads ?? 1,
          durability,
          flushCounter,
          idleRecheckMs: remoteRecheckMs,
        },
        [],
        (_name, why) => options.onFatal?.(`the DPM manager died: ${why}`),
      );
      cleanups.push(() => manager.terminate());
      await manager.waitFor(
        (m) => ((m as { type?: string }).type === 'ready' ? true : undefined),
        clock,
        startTimeoutMs,
      );
      if (file.reopened) await settle(manager, region, clock, options.requestTimeoutMs ?? 10_000);
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
        region,
        flushMetadata,
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
      case 'create-linked':
        this.answer(ctx, msg.replyTo, () =>
          this.control(msg.rank, msg.incarnation).createLinked(msg.rank, msg.entryOffset),
        );
        return;
      case 'scan-partitions':
        this.answer(ctx, msg.replyTo, () =>
          this.control(msg.rank, msg.incarnation).scanPartitions(
            msg.rank,
            msg.slots,
            msg.tableVersion,
            msg.fromBucket,
            msg.keysMax,
          ),
        );
        return;
      case 'failover':
        this.answer(ctx, msg.replyTo, () => {
          this.checkRank(msg.rank);
          checkInteger('incarnation', msg.incarnation, 0, incarnationMax - 1);
          // Cut the thread off at the fabric first, so no write of it lands while the manager
          // trims, seals and merges its chain.
          this.fenceFabric(msg.rank, msg.incarnation);
          return this.failovers.failover(msg.rank, msg.incarnation);
        });
        return;
      case 'incarnation':
        this.answerNow(ctx, msg.replyTo, () => this.incarnationOf(msg.rank));
        return;
      case 'read-map':
        this.answerNow(ctx, msg.replyTo, () => this.readMap());
        return;
      case 'write-owners':
        this.answerNow(ctx, msg.replyTo, () => this.writeOwners(msg.slots, msg.owner, msg.epoch));
        return;
      case 'write-map':
        this.answerNow(ctx, msg.replyTo, () => this.writeMap(msg.slotMap, msg.epoch));
        return;
    }
  }

  /**
   * The lowest incarnation of `rank` that is not fenced: the fence word in the region, or the
   * fabric's floor while a failover has fenced the fabric but not yet the word.
   */
  private incarnationOf(rank: number): number {
    this.checkRank(rank);
    const word = currentIncarnation(this.region.i32, fenceWordOffset(this.region, rank) / 4);
    return Math.max(word, this.fabricFloor.get(rank) ?? 0);
  }

  private readMap(): { epoch: number; slotMap: Uint8Array } {
    const { metadataOffset } = this.region.geometry;
    const at = metadataOffset + Metadata.slotMap;
    return {
      epoch: readMapEpoch(this.region.view, metadataOffset),
      slotMap: this.region.bytes.slice(at, at + slotMapBytes),
    };
  }

  private writeOwners(slots: unknown, owner: unknown, epoch: unknown): null {
    if (!Array.isArray(slots)) {
      throw new DinomoError('INVALID_OPTION', 'slots must be an array of slot numbers');
    }
    for (const slot of slots as unknown[]) checkInteger('slot', slot, 0, slotCount - 1);
    const chainCount = this.region.geometry.chainCount;
    checkInteger('owner', owner, 0, chainCount - 1);
    const newEpoch = this.checkEpoch(epoch);
    writeSlotOwners(
      this.region.view,
      this.region.geometry.metadataOffset,
      slots as number[],
      owner as number,
      newEpoch,
    );
    this.flushMetadata();
    return null;
  }

  private writeMap(slotMap: unknown, epoch: unknown): null {
    if (!(slotMap instanceof Uint8Array) || slotMap.byteLength !== slotMapBytes) {
      throw new DinomoError(
        'INVALID_OPTION',
        `slotMap must be ${slotMapBytes} bytes (16384 owners as u16 little-endian)`,
      );
    }
    const newEpoch = this.checkEpoch(epoch);
    const chainCount = this.region.geometry.chainCount;
    const view = new DataView(slotMap.buffer, slotMap.byteOffset, slotMap.byteLength);
    const owners = new Uint16Array(slotCount);
    for (let slot = 0; slot < slotCount; slot++) {
      const owner = view.getUint16(slot * 2, true);
      if (owner >= chainCount && owner !== Metadata.slotUnassigned) {
        throw new DinomoError(
          'INVALID_OPTION',
          `slotMap gives slot ${slot} owner ${owner}, outside 0..${chainCount - 1} ` +
            `(or ${Metadata.slotUnassigned}, unassigned)`,
        );
      }
      owners[slot] = owner;
    }
    writeSlotMap(this.region.view, this.region.geometry.metadataOffset, owners, newEpoch);
    this.flushMetadata();
    return null;
  }

  /** A new map epoch: a u32 that is not below the persisted one. */
  private checkEpoch(epoch: unknown): number {
    const current = readMapEpoch(this.region.view, this.region.geometry.metadataOffset);
    checkInteger('epoch', epoch, 0, 0xffff_ffff);
    if ((epoch as number) < current) {
      throw new DinomoError(
        'INVALID_OPTION',
        `epoch ${epoch as number} is below the persisted map's epoch ${current}`,
      );
    }
    return epoch as number;
  }

  private checkRank(rank: unknown): void {
    checkInteger('rank', rank, 0, this.region.geometry.chainCount - 1);
  }

  /** Fences incarnations up to `incarnation` of `rank` at the fabric, and remembers the floor. */
  private fenceFabric(rank: number, incarnation: number): void {
    this.fabricFloor.set(rank, Math.max(this.fabricFloor.get(rank) ?? 0, incarnation + 1));
    this.fabric.fence(rank, incarnation);
  }

  /** Answers an ask with what `run` returns, or with the error it throws. */
  private answerNow<T>(
    ctx: ActorContext<DpmServerMessage>,
    replyTo: ReplyTo<T>,
    run: () => T,
  ): void {
    let value: T;
    try {
      value = run();
    } catch (err) {
      ctx.replyError(replyTo, err);
      return;
    }
    ctx.reply(replyTo, value);
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
    this.checkRank(rank);
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

/** Throws INVALID_OPTION unless `value` is an integer in `min..max`. */
function checkInteger(what: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new DinomoError(
      'INVALID_OPTION',
      `${what} must be an integer in ${min}..${max} (got ${shown(value)})`,
    );
  }
}

function shown(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * Before a restarted DPM answers anyone, every chain is merged through its commit offsets: a chain
 * no KN thread will write again would otherwise be merged only in the background, and a read
 * through the index could miss a write that was acknowledged before the restart.
 */
async function settle(
  manager: WorkerHandle,
  region: Region,
  clock: Clock,
  timeoutMs: number,
): Promise<void> {
  const channel = new MessageChannel();
  manager.worker.postMessage({ type: 'attach', port: channel.port2 }, [channel.port2]);
  const control = new PortDpmControl(channel.port1, clock, timeoutMs, 0);
  try {
    await Promise.all(unmergedChains(region).map((c) => control.waitMerged(c.rank, c.lsn)));
  } finally {
    control.close();
  }
}
