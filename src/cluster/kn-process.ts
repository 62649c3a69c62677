import { openMonitorLink } from '../client/index.js';
import { threadStatsBytes } from '../kn/index.js';
import type { KnProcessWorkerData } from '../kn/kn-process-worker.js';
import { systemClock, type Clock } from '../time/index.js';
import { workerScript } from '../util/worker-script.js';
import type { HostPort, JoinAnswer, MonitorServerMessage } from './monitor-protocol.js';
import { WorkerHandle } from './worker-handle.js';

export interface KnProcessOptions {
  monitor: HostPort;
  secret: string;
  threads: number;
  /** The interface clients connect to and fabric endpoints bind; default 127.0.0.1. */
  host?: string;
  clock?: Clock;
  /** A thread died: the KN is useless then (its slots are failed over), and the process should exit. */
  onFatal?: (why: string) => void;
  /** All threads stopped (the monitor removed the KN, or stop() ran). */
  onStopped?: () => void;
}

/** How long joining may take: connecting, and every thread taking its grant, block and port. */
const startTimeoutMs = 30_000;
const askTimeoutMs = 10_000;

/**
 * A KN as a process of its own (`dinomo kn`): it joins the cluster through the monitor, which gives
 * it an id, its thread ranks and the DPM server's address, then runs one worker thread per rank
 * (kn-process-worker.ts), each with its own fabric endpoint, DPM link, monitor link and data port.
 * Once every thread serves, it tells the monitor its data ports (`joined`).
 */
export class KnProcess {
  readonly knId: number;
  readonly ranks: readonly number[];
  readonly endpoints: ReadonlyArray<{ rank: number; host: string; port: number }>;
  private readonly threads: WorkerHandle[];
  private stopping = false;

  private constructor(
    answer: JoinAnswer,
    threads: WorkerHandle[],
    endpoints: Array<{ rank: number; host: string; port: number }>,
  ) {
    this.knId = answer.knId;
    this.ranks = answer.ranks;
    this.threads = threads;
    this.endpoints = endpoints;
  }

  static async start(options: KnProcessOptions): Promise<KnProcess> {
    const clock = options.clock ?? systemClock;
    const host = options.host ?? '127.0.0.1';
    const { link, monitor, close } = openMonitorLink<MonitorServerMessage>({
      node: 'kn-process',
      ...options.monitor,
      secret: options.secret,
      clock,
    });
    const threads: WorkerHandle[] = [];
    try {
      await link.waitUp(askTimeoutMs);
      const answer = await link.ask<MonitorServerMessage, JoinAnswer>(
        monitor,
        (replyTo) => ({ type: 'join', threads: options.threads, replyTo }),
        askTimeoutMs,
      );
      const statsBuffer = new SharedArrayBuffer(threadStatsBytes(answer.ranks.length));
      let stopped = 0;
      const ports = answer.ranks.map((rank, index) => {
        const data: KnProcessWorkerData = {
          knId: answer.knId,
          rank,
          index,
          statsBuffer,
          secret: options.secret,
          dpm: answer.dpm,
          monitor: options.monitor,
          host,
          settings: answer.settings,
        };
        const handle = new WorkerHandle(
          workerScript(import.meta.url, '../kn/kn-process-worker.js'),
          `kn-${answer.knId}-thread-${rank}`,
          data,
          [],
          (name, why) => options.onFatal?.(`KN thread ${name} ${why}`),
        );
        handle.worker.on('message', (m: { type?: string }) => {
          if (m.type !== 'stopped') return;
          // The monitor stopped the thread (the KN left the cluster); it exits next.
          handle.markStopping();
          if (++stopped === answer.ranks.length) options.onStopped?.();
        });
        threads.push(handle);
        return handle.waitFor(
          (m) =>
            (m as { type?: string }).type === 'ready' ? (m as { port: number }).port : undefined,
          clock,
          startTimeoutMs,
        );
      });
      const endpoints = (await Promise.all(ports)).map((port, i) => ({
        rank: answer.ranks[i] as number,
        host,
        port,
      }));
      await link.ask<MonitorServerMessage, null>(
        monitor,
        (replyTo) => ({ type: 'joined', knId: answer.knId, endpoints, replyTo }),
        askTimeoutMs,
      );
      return new KnProcess(answer, threads, endpoints);
    } catch (err) {
      await Promise.all(threads.map((t) => t.terminate()));
      throw err;
    } finally {
      close();
    }
  }

  /**
   * Stops every thread: each answers and commits what it took, then closes. The monitor notices the
   * silence and fails the KN over (nothing acknowledged is lost); `dinomo cluster down` stops KNs
   * before the monitor and the DPM.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all(
      this.threads.map(async (t) => {
        t.markStopping();
        const exited = new Promise<void>((resolve) => t.worker.once('exit', () => resolve()));
        t.worker.postMessage({ type: 'stop' });
        await exited;
      }),
    );
  }
}
