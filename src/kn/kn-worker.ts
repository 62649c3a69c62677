/**
 * Worker-thread entry of one KN thread. It wires the pure parts together: the region's fabric
 * endpoint (with this rank's fence word), the DAC, the index reader, the DPM manager channel, and
 * KnThread; then it feeds request batches from the parent port to KnThread and posts the answers.
 *
 * Data: the parent posts request batches (Uint8Array) on the worker port; answers go back the same way.
 * Control: a `control` actor (kn-control.ts) answers `ping` and `stop` asks from the main thread's
 * actor system, over a cbor-x PortTransport on `controlPort`. `{ type: 'ready' }` on the worker port
 * says the thread started.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ActorSystem, PortTransport, actorAddress, systemAddress } from '../actors/index.js';
import { Superblock } from '../dpm/layout.js';
import { IndexReader, fenceWordOffset, openRegion } from '../dpm/index.js';
import { fileRangeFlush } from '../dpm/region-flush.js';
import { LocalFabric, currentIncarnation } from '../fabric/index.js';
import { systemClock } from '../time/index.js';
import { assert } from '../util/assert.js';
import { KnThread } from './kn-thread.js';
import {
  embeddedLocation,
  knThreadName,
  monitorActorName,
  type MonitorMessage,
} from './kn-control.js';
import {
  keepLease,
  knThreadOptions,
  modeDeps,
  readOwnership,
  spawnKnControl,
} from './kn-thread-runtime.js';
import type { KnWorkerData } from './kn-worker-data.js';
import { PortDpmControl } from './port-dpm-control.js';
import { postBatch } from './post-batch.js';
import { threadStatsView } from './thread-stats.js';

interface StartData extends KnWorkerData {
  managerPort: MessagePort;
  controlPort: MessagePort;
  mainPid: number;
}

async function main(): Promise<void> {
  assert(parentPort !== null, 'kn-worker runs in a worker thread');
  const port = parentPort;
  const data = workerData as StartData;
  const region = openRegion(data.region);
  const fenceOffset = fenceWordOffset(region, data.rank);
  // A rank that ran before starts as the incarnation its failover's fence allows.
  const incarnation = currentIncarnation(new Int32Array(data.region), fenceOffset / 4);
  const fabric = new LocalFabric(
    data.region,
    fenceOffset,
    incarnation,
    // With durability 'sync' every persist flushes the range the thread wrote since the last one.
    // A failed flush throws UNAVAILABLE, so the commit fails like a lost connection: its writes are
    // indeterminate, and the thread abandons its block and reconnects (KnThread).
    data.durability === 'sync' ? { persistRange: fileRangeFlush(data.region) } : {},
  );
  const { epoch, ownedSlots } = readOwnership(fabric, region.geometry.metadataOffset, data.rank);
  const doorbell = new Int32Array(data.region, Superblock.doorbell, 1);
  const dpm = new PortDpmControl(data.managerPort, systemClock, data.controlTimeoutMs, incarnation);
  const thread = new KnThread(
    {
      fabric,
      dpm,
      clock: systemClock,
      ...modeDeps(data, fabric, region.geometry),
      index: new IndexReader(fabric, region.geometry),
      stats: threadStatsView(data.statsBuffer, data.rank),
      ownedSlots,
      send: (batch) => postBatch(port, batch),
      ringDoorbell: () => {
        Atomics.add(doorbell, 0, 1);
        Atomics.notify(doorbell, 0);
      },
    },
    knThreadOptions(data, data.rank, epoch),
  );
  await thread.start();
  port.on('message', (message: Uint8Array) => thread.enqueue(message));
  const actors = ActorSystem.start({
    ...embeddedLocation(data.mainPid, knThreadName(data.rank)),
    clock: systemClock,
  });
  const main = systemAddress(embeddedLocation(data.mainPid, 'main'));
  new PortTransport(actors, data.controlPort, main);
  spawnKnControl(actors, thread, data.rank, () => {
    dpm.close();
    port.close();
  });
  await keepLease(thread, {
    asker: actors,
    monitor: actors.remoteRef<MonitorMessage>(actorAddress(main, monitorActorName)),
    clock: systemClock,
    rank: data.rank,
    incarnation,
    heartbeatMs: data.heartbeatMs,
  });
  thread.publishStats();
  port.postMessage({ type: 'ready' });
}

main().catch((err: unknown) => {
  console.error('KN worker failed to start:', err);
  process.exit(1);
});
