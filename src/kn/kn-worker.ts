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
import { Metadata, Superblock } from '../dpm/layout.js';
import { IndexReader, fenceWordOffset, openRegion } from '../dpm/index.js';
import { fileRangeFlush } from '../dpm/region-flush.js';
import { LocalFabric, currentIncarnation } from '../fabric/index.js';
import { systemClock } from '../time/index.js';
import { assert } from '../util/assert.js';
import { Dac } from './dac.js';
import { KnThread } from './kn-thread.js';
import {
  embeddedLocation,
  knControlActorName,
  knThreadName,
  monitorActorName,
  type KnControlMessage,
  type MonitorMessage,
} from './kn-control.js';
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
      dac: new Dac({ capacityBytes: data.cacheBytes }),
      index: new IndexReader(fabric, region.geometry),
      stats: threadStatsView(data.statsBuffer, data.rank),
      ownedSlots,
      send: (batch) => postBatch(port, batch),
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
      // No lease until the M-node grants one: the first heartbeat goes out before `ready`.
      leaseUntilUs: 0,
    },
  );
  await thread.start();
  port.on('message', (message: Uint8Array) => thread.enqueue(message));
  const actors = ActorSystem.start({
    ...embeddedLocation(data.mainPid, knThreadName(data.rank)),
    clock: systemClock,
  });
  new PortTransport(
    actors,
    data.controlPort,
    systemAddress(embeddedLocation(data.mainPid, 'main')),
  );
  actors.spawn<null, KnControlMessage>(knControlActorName, {
    initialState: null,
    handle: async (state, msg, ctx) => {
      if (msg.type === 'ping') {
        ctx.reply(msg.replyTo, { rank: data.rank });
        return state;
      }
      if (msg.type === 'release') {
        const lsn = await thread.releaseSlots(msg.slots);
        ctx.reply(msg.replyTo, { rank: data.rank, lsn });
        return state;
      }
      if (msg.type === 'acquire') {
        // Answered once the previous owners' logs are merged; the actor takes messages meanwhile.
        thread.acquireSlots(msg.slots, msg.epoch, msg.waitFor).then(
          () => ctx.reply(msg.replyTo, { rank: data.rank }),
          (err: unknown) => ctx.replyError(msg.replyTo, err),
        );
        return state;
      }
      await thread.quiesce();
      thread.publishStats();
      dpm.close();
      ctx.reply(msg.replyTo, { rank: data.rank, committedEntries: thread.committedEntries });
      port.close();
      return state;
    },
  });
  await keepLease(actors, thread, data, incarnation);
  thread.publishStats();
  port.postMessage({ type: 'ready' });
}

/**
 * The heartbeat loop: every heartbeatMs the thread asks the M-node for its lease, stamping the
 * request with its send time; a grant extends the lease from that time (never beyond what the
 * M-node recorded), a refusal retires the thread (it was declared failed, and its slots moved).
 */
async function keepLease(
  actors: ActorSystem,
  thread: KnThread,
  data: StartData,
  incarnation: number,
): Promise<void> {
  const monitor = actors.remoteRef<MonitorMessage>(
    actorAddress(systemAddress(embeddedLocation(data.mainPid, 'main')), monitorActorName),
  );
  const beat = async (): Promise<void> => {
    if (thread.retired !== null) return;
    const sentUs = systemClock.nowUs();
    try {
      const answer = await actors.ask<
        MonitorMessage,
        { granted: boolean; leaseUs?: number; reason?: string }
      >(
        monitor,
        (replyTo) => ({ type: 'heartbeat', rank: data.rank, incarnation, replyTo }),
        data.heartbeatMs * 10,
      );
      if (answer.granted) thread.extendLease(sentUs + (answer.leaseUs ?? 0));
      else thread.retire(answer.reason ?? 'refused by the M-node');
    } catch {
      // No answer: the lease simply runs out unless a later heartbeat gets through.
    }
  };
  const loop = (): void => {
    void beat();
    systemClock.setTimer(data.heartbeatMs * 1000, loop);
  };
  await beat();
  systemClock.setTimer(data.heartbeatMs * 1000, loop);
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
