import { MessageChannel } from 'node:worker_threads';
import { ActorSystem, PortTransport, actorAddress, systemAddress } from '../actors/index.js';
import { fillOptions, type ClusterOptions, type FilledOptions } from '../config/index.js';
import { Metadata } from '../dpm/layout.js';
import { formatRegion, openRegion } from '../dpm/index.js';
import { DinomoError } from '../errors/index.js';
import { EmbeddedClient, KnChannel, type KvClient } from '../client/index.js';
import {
  embeddedLocation,
  knControlActorName,
  knThreadName,
  postBatch,
  threadStatsBytes,
  type KnControlMessage,
  type KnStopped,
  type KnWorkerData,
} from '../kn/index.js';
import { evenSlotMap } from '../routing/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { workerScript } from '../util/worker-script.js';
import { collectStats, type ClusterStats } from './cluster-stats.js';
import { WorkerHandle } from './worker-handle.js';

const startTimeoutMs = 30_000;
const stopTimeoutMs = 30_000;

interface KnThreadHandle {
  knId: number;
  rank: number;
  handle: WorkerHandle;
  channel: KnChannel;
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
  private manager: WorkerHandle | null = null;
  /** The main thread's actor system: control traffic to KN threads (stop, ping) goes through it. */
  private readonly actors: ActorSystem;
  private state: 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' = 'starting';
  private failure: string | null = null;

  private constructor(options: FilledOptions, clock: Clock) {
    this.options = options;
    this.clock = clock;
    const ranks = options.kns * options.threadsPerKn;
    this.region = new SharedArrayBuffer(options.regionBytes);
    formatRegion(this.region, { blockBytes: options.blockBytes, chainCount: ranks });
    this.slotMap = evenSlotMap(ranks);
    this.writeSlotMap(1);
    this.statsBuffer = new SharedArrayBuffer(threadStatsBytes(ranks));
    this.actors = ActorSystem.start({ ...embeddedLocation(process.pid, 'main'), clock });
  }

  /** Starts an embedded cluster. Bad options throw INVALID_OPTION (or NOT_SUPPORTED) and start nothing. */
  static async start(options?: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(fillOptions(options), systemClock);
    try {
      await cluster.startWorkers();
    } catch (err) {
      await cluster.teardown();
      throw err;
    }
    cluster.state = 'running';
    return cluster;
  }

  /** A client for this cluster; clients are cheap and share the cluster's channels. */
  client(): KvClient {
    return new EmbeddedClient(
      this.threads.map((t) => t.channel),
      this.slotMap,
    );
  }

  stats(): ClusterStats {
    return collectStats(this.region, this.statsBuffer, this.threads);
  }

  /** @internal The DPM region, for tests that inspect the index and logs directly. */
  get regionForTests(): SharedArrayBuffer {
    return this.region;
  }

  /** Adds a KN at run time. Online reconfiguration comes with the elastic-cluster work. */
  addKn(): Promise<number> {
    return Promise.reject(
      new DinomoError('NOT_SUPPORTED', 'addKn is not supported yet (elastic cluster)'),
    );
  }

  removeKn(id: number): Promise<void> {
    return Promise.reject(
      new DinomoError('NOT_SUPPORTED', `removeKn(${id}) is not supported yet (elastic cluster)`),
    );
  }

  failKn(id: number): Promise<void> {
    return Promise.reject(
      new DinomoError('NOT_SUPPORTED', `failKn(${id}) is not supported yet (elastic cluster)`),
    );
  }

  /**
   * Stops the cluster: new requests fail with CLOSED, KN threads commit and acknowledge what they
   * staged, the DPM merges what is committed, then every worker exits.
   */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    // Refuse new requests, send what is batched, and let every request in flight be answered:
    // the KN threads acknowledge staged writes when they commit them.
    await Promise.all(
      this.threads.map((t) => t.channel.drain('CLOSED', 'the cluster is stopping')),
    );
    await Promise.all(
      this.threads.map(async (t) => {
        t.handle.markStopping();
        const control = this.actors.remoteRef<KnControlMessage>(
          actorAddress(
            systemAddress(embeddedLocation(process.pid, knThreadName(t.rank))),
            knControlActorName,
          ),
        );
        await this.actors.ask<KnControlMessage, KnStopped>(
          control,
          (replyTo) => ({ type: 'stop', replyTo }),
          stopTimeoutMs,
        );
        t.channel.close('CLOSED', 'the cluster was stopped');
      }),
    ).catch((err: unknown) => console.error('dinomo: a KN thread did not stop cleanly:', err));
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

  private async startWorkers(): Promise<void> {
    const onDeath = (name: string, why: string): void => this.onWorkerDeath(name, why);
    this.manager = new WorkerHandle(
      workerScript(import.meta.url, '../dpm/dpm-manager-worker.js'),
      'dpm-manager',
      { region: this.region, mergeThreads: this.options.mergeThreads },
      [],
      onDeath,
    );
    const o = this.options;
    for (let knId = 1; knId <= o.kns; knId++) {
      for (let t = 0; t < o.threadsPerKn; t++)
        this.startKnThread(knId, (knId - 1) * o.threadsPerKn + t, onDeath);
    }
    const managerReady = this.manager.waitFor(
      (m) => (isType(m, 'ready') ? true : undefined),
      this.clock,
      startTimeoutMs,
    );
    await Promise.all([
      managerReady,
      ...this.threads.map((t) =>
        t.handle.waitFor(
          (m) => (isType(m, 'ready') ? true : undefined),
          this.clock,
          startTimeoutMs,
        ),
      ),
    ]);
  }

  private startKnThread(
    knId: number,
    rank: number,
    onDeath: (name: string, why: string) => void,
  ): void {
    const o = this.options;
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
      cacheBytes: o.cacheBytesPerThread,
      blockBytes: o.blockBytes,
      recentBlocks: o.recentBlocks,
      groupCommitUs: o.groupCommitUs,
      groupCommitBytes: o.groupCommitBytes,
      inflightMax: o.inflightMaxPerThread,
      controlTimeoutMs: o.requestTimeoutMs,
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
    this.threads.push({ knId, rank, handle, channel });
  }

  private onWorkerDeath(name: string, why: string): void {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'failed';
    this.failure = `${name} ${why}`;
    console.error(`dinomo: worker ${this.failure}`);
    for (const t of this.threads) t.channel.close('WORKER_FAILED', `worker ${this.failure}`);
  }

  private writeSlotMap(epoch: number): void {
    const { metadataOffset } = openRegion(this.region).geometry;
    const view = new DataView(this.region);
    for (let slot = 0; slot < this.slotMap.length; slot++) {
      view.setUint16(
        metadataOffset + Metadata.slotMap + slot * 2,
        this.slotMap[slot] as number,
        true,
      );
    }
    view.setUint32(metadataOffset + Metadata.epoch, epoch, true);
  }

  private async teardown(): Promise<void> {
    this.actors.stop();
    const all = [
      ...this.threads.map((t) => t.handle),
      ...(this.manager === null ? [] : [this.manager]),
    ];
    await Promise.all(all.map((h) => h.terminate()));
    for (const t of this.threads) t.channel.close('CLOSED', 'the cluster was stopped');
  }
}

function isType(message: unknown, type: string): boolean {
  return (
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type
  );
}
