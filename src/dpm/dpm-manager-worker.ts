/**
 * Worker-thread entry of the DPM manager: opens the region, starts the merge pool (piscina), and
 * wires ports and the doorbell to DpmManagerService. All logic lives in the service and the core;
 * this file only performs effects. Started with `workerData: DpmManagerWorkerData`.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { DinomoError, toWireError } from '../errors/index.js';
import { workerScript } from '../util/worker-script.js';
import { DpmManagerService } from './dpm-manager-service.js';
import type {
  DpmManagerWorkerData,
  DpmToParentMessage,
  ParentToDpmMessage,
} from './dpm-protocol.js';
import { Superblock } from './layout.js';
import type { CleanResult } from './cleaner.js';
import type { MergeResult } from './merge.js';
import type { CleanTaskInput, MergeTaskInput, TaskRegion } from './merge-task.js';
import { fileRegionFlush, newFlushCounter } from './region-flush.js';
import { openRegion } from './region.js';

/**
 * How often an idle manager re-checks the chains even without a doorbell (missed rings, stalls),
 * unless the worker data says otherwise (`idleRecheckMs`).
 */
const defaultIdleRecheckMs = 50;

/** About how often stalled chains get another chance and cleaning looks again (`service.tick`). */
const tickMs = 50;

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeoutMs: number,
) =>
  | { async: false; value: 'not-equal' | 'timed-out' }
  | { async: true; value: Promise<'ok' | 'timed-out'> };

function yieldToEventLoop(): Promise<void> {
  // The worker entry is the effect layer: a bare macrotask yield involves no time and no decision.
  // eslint-disable-next-line no-restricted-globals -- see above; only this entry file yields like this
  return new Promise((resolve) => setImmediate(resolve));
}

// Atomics.waitAsync exists in Node 20 but is not in the ES2023 lib this project compiles against.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

function main(port: MessagePort): void {
  const data = workerData as DpmManagerWorkerData;
  const region = openRegion(data.region);
  const threads = Math.max(1, Math.floor(data.mergeThreads));
  // One thread more than merges may use: at most one cleaning task runs at a time, and it should
  // not wait behind merges (nor hold a merge thread), since both only meet at the index lock.
  const pool = new Piscina<MergeTaskInput | CleanTaskInput, MergeResult | CleanResult>({
    filename: workerScript(import.meta.url, './merge-task.js').href,
    minThreads: threads + 1,
    maxThreads: threads + 1,
  });
  // With durability 'sync' the manager flushes in this thread, and every task in its own (the
  // counter in the task input tells it to); see docs/architecture.md, "Durability".
  const sync = data.durability === 'sync';
  const flushCounter = data.flushCounter ?? newFlushCounter();
  const taskRegion: TaskRegion = sync
    ? { region: data.region, flushCounter }
    : { region: data.region };
  const service = new DpmManagerService(region, {
    runMerge: (rank, maxEntries) =>
      pool.run({ ...taskRegion, rank, maxEntries }) as Promise<MergeResult>,
    runClean: (request) =>
      pool.run({ ...taskRegion, ...request }, { name: 'cleanTask' }) as Promise<CleanResult>,
    maxWaiters: data.maxWaiters ?? 4096,
    mergeBatchEntries: data.mergeBatchEntries ?? 4096,
    maxConcurrentMerges: threads,
    ...(sync ? { flush: fileRegionFlush(data.region, flushCounter) } : {}),
  });
  let stopped = false;
  const doorbellIndex = Superblock.doorbell / 4;
  const recheckMs =
    data.idleRecheckMs !== undefined &&
    Number.isFinite(data.idleRecheckMs) &&
    data.idleRecheckMs > 0
      ? data.idleRecheckMs
      : defaultIdleRecheckMs;
  // With the default interval every timed-out wait ticks, as before; with a short one (remote KN
  // threads, which cannot ring) a timed-out wait only pumps, and every n-th one ticks: a tick makes
  // the cleaner scan the block headers again, which is not worth doing every millisecond.
  const timeoutsPerTick = Math.max(1, Math.round(tickMs / recheckMs));
  let timeouts = 0;

  /**
   * Merge scheduling: sleep on the doorbell word (KN threads add 1 and notify after each commit),
   * with a timeout so that chains are re-checked even if a ring was missed or never comes. The pump
   * at the top of the loop submits a merge for every chain whose commit word moved past its merge
   * cursor (DpmManagerCore.chainsNeedingMerge reads the commit words), so a timed-out wait merges
   * remote commits within about `recheckMs`.
   */
  async function watchDoorbell(): Promise<void> {
    while (!stopped) {
      const seen = Atomics.load(region.i32, doorbellIndex);
      service.pump();
      const wait = waitAsync(region.i32, doorbellIndex, seen, recheckMs);
      const outcome = wait.async ? await wait.value : wait.value;
      if (outcome === 'timed-out') {
        timeouts++;
        if (timeouts >= timeoutsPerTick) {
          timeouts = 0;
          service.tick();
        }
      }
      // A ring between our load and the wait returns at once; yield so that merge results and port
      // messages (macrotasks) still run when KN threads ring faster than we loop.
      else if (outcome === 'not-equal') await yieldToEventLoop();
    }
  }

  async function stop(id: number): Promise<void> {
    stopped = true;
    Atomics.notify(region.i32, doorbellIndex);
    await service.stop();
    await pool.close();
    post({ type: 'stopped', id });
    port.close();
  }

  port.on('message', (msg: ParentToDpmMessage) => {
    switch (msg.type) {
      case 'attach':
        service.attach(msg.port);
        return;
      case 'stats':
        post({ type: 'stats-ok', id: msg.id, stats: service.core.stats() });
        return;
      case 'stop':
        stop(msg.id).catch((err: unknown) =>
          post({ type: 'error', id: msg.id, ...toWireError(err) }),
        );
        return;
    }
  });

  function post(msg: DpmToParentMessage): void {
    port.postMessage(msg);
  }

  watchDoorbell().catch((err: unknown) => {
    post({ type: 'error', id: 0, ...toWireError(err) });
  });
  post({ type: 'ready' });
}

if (parentPort === null) {
  throw new DinomoError('INTERNAL', 'dpm-manager-worker.js must be started as a worker thread');
}
main(parentPort);
