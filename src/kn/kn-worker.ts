/**
 * Worker-thread entry of one KN thread. It wires the pure parts together: the region's fabric
 * endpoint (with this rank's fence word), the DAC, the index reader, the DPM manager channel, and
 * KnThread; then it feeds request batches from the parent port to KnThread and posts the answers.
 *
 * Messages from the parent: a Uint8Array = a request batch; { type: 'stop' } = finish, commit, exit.
 * Messages to the parent: { type: 'ready' }, Uint8Array = a response batch, { type: 'stopped' }.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { Metadata, Superblock } from '../dpm/layout.js';
import { IndexReader, fenceWordOffset, openRegion } from '../dpm/index.js';
import { LocalFabric } from '../fabric/index.js';
import { systemClock } from '../time/index.js';
import { assert } from '../util/assert.js';
import { Dac } from './dac.js';
import { KnThread } from './kn-thread.js';
import type { KnWorkerData } from './kn-worker-data.js';
import { PortDpmControl } from './port-dpm-control.js';
import { threadStatsView } from './thread-stats.js';

interface StartData extends KnWorkerData {
  managerPort: MessagePort;
}

async function main(): Promise<void> {
  assert(parentPort !== null, 'kn-worker runs in a worker thread');
  const port = parentPort;
  const data = workerData as StartData;
  const region = openRegion(data.region);
  const fabric = new LocalFabric(data.region, fenceWordOffset(region, data.rank));
  const { epoch, ownedSlots } = readOwnership(fabric, region.geometry.metadataOffset, data.rank);
  const doorbell = new Int32Array(data.region, Superblock.doorbell, 1);
  const dpm = new PortDpmControl(data.managerPort, systemClock, data.controlTimeoutMs);
  const thread = new KnThread(
    {
      fabric,
      dpm,
      clock: systemClock,
      dac: new Dac({ capacityBytes: data.cacheBytes }),
      index: new IndexReader(fabric, region.geometry),
      stats: threadStatsView(data.statsBuffer, data.rank),
      ownedSlots,
      send: (batch) =>
        port.postMessage(batch, batch.length >= 16384 ? [batch.buffer as ArrayBuffer] : []),
      ringDoorbell: () => {
        Atomics.add(doorbell, 0, 1);
        Atomics.notify(doorbell, 0);
      },
    },
    {
      rank: data.rank,
      epoch,
      blockBytes: data.blockBytes,
      recentBlocks: data.recentBlocks,
      groupCommitUs: data.groupCommitUs,
      groupCommitBytes: data.groupCommitBytes,
      inflightMax: data.inflightMax,
    },
  );
  await thread.start();
  port.on('message', (message: Uint8Array | { type: 'stop' }) => {
    if (message instanceof Uint8Array) {
      thread.enqueue(message);
      return;
    }
    void thread.quiesce().then(() => {
      thread.publishStats();
      dpm.close();
      port.postMessage({ type: 'stopped' });
      port.close();
    });
  });
  thread.publishStats();
  port.postMessage({ type: 'ready' });
}

/** Reads the epoch and this rank's slots from the cluster metadata (one RT). */
function readOwnership(
  fabric: LocalFabric,
  metadataOffset: number,
  rank: number,
): { epoch: number; ownedSlots: Uint8Array } {
  const bytes = new Uint8Array(Metadata.slotMap + 16384 * 2);
  fabric.read(metadataOffset, bytes.length, bytes);
  const view = new DataView(bytes.buffer);
  const ownedSlots = new Uint8Array(16384);
  for (let slot = 0; slot < 16384; slot++) {
    ownedSlots[slot] = view.getUint16(Metadata.slotMap + slot * 2, true) === rank ? 1 : 0;
  }
  return { epoch: view.getUint32(Metadata.epoch, true), ownedSlots };
}

main().catch((err: unknown) => {
  console.error('KN worker failed to start:', err);
  process.exit(1);
});
