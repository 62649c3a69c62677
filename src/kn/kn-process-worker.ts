/**
 * Worker-thread entry of one KN thread of a KN process (`dinomo kn`): the same KnThread as in the
 * embedded cluster, wired to other processes. Its fabric is a libfabric endpoint into the DPM
 * server's region (NativeFabric), its DPM control is an actor link to the DPM server, its lease
 * comes from the monitor over a second link (where its control actor also answers the monitor's
 * release, acquire and stop), and clients reach it on its own TCP data port (KnDataServer).
 *
 * Parent port: `{ type: 'ready', port }` once the thread serves; `{ type: 'stop' }` from the parent
 * stops it (commit, acknowledge, close); `{ type: 'stopped' }` says it closed everything and exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  ActorSystem,
  TcpLink,
  actorAddress,
  systemAddress,
  type ActorRef,
} from '../actors/index.js';
import { dpmSystemLocation } from '../dpm/dpm-server-protocol.js';
import { IndexReader } from '../dpm/index.js';
import { NativeFabric } from '../fabric/index.js';
import { monitorSystemLocation } from '../routing/index.js';
import { systemClock } from '../time/index.js';
import { assert } from '../util/assert.js';
import { ActorDpmControl } from './actor-dpm-control.js';
import { ClientMux } from './client-mux.js';
import { KnDataServer } from './kn-data-server.js';
import { knProcessThreadLocation, monitorActorName, type MonitorMessage } from './kn-control.js';
import { KnThread } from './kn-thread.js';
import {
  keepLease,
  knThreadOptions,
  modeDeps,
  readOwnership,
  spawnKnControl,
} from './kn-thread-runtime.js';
import type { KnThreadSettings } from './kn-worker-data.js';
import { threadStatsView } from './thread-stats.js';

export interface KnProcessWorkerData {
  knId: number;
  rank: number;
  /** This thread's index in the process (its row in `statsBuffer`). */
  index: number;
  statsBuffer: SharedArrayBuffer;
  secret: string;
  dpm: { host: string; port: number };
  monitor: { host: string; port: number };
  /** The interface clients connect to (the data port), and the one fabric endpoints bind. */
  host: string;
  settings: KnThreadSettings;
}

/** How long the thread waits for the DPM server and the monitor when it starts. */
const connectTimeoutMs = 10_000;

async function main(): Promise<void> {
  assert(parentPort !== null, 'kn-process-worker runs in a worker thread');
  const port = parentPort;
  const data = workerData as KnProcessWorkerData;
  const { rank, settings } = data;
  const clock = systemClock;
  const actors = ActorSystem.start({ ...knProcessThreadLocation(data.knId, rank), clock });
  const link = (to: { host: string; port: number }, peer: string): TcpLink =>
    new TcpLink(actors, { ...to, secret: data.secret, clock, expectedPeer: peer });
  const dpmLink = link(data.dpm, systemAddress(dpmSystemLocation));
  const monitorAddress = systemAddress(monitorSystemLocation);
  const monitorLink = link(data.monitor, monitorAddress);
  await Promise.all([dpmLink.waitUp(connectTimeoutMs), monitorLink.waitUp(connectTimeoutMs)]);

  // A rank that ran before (a cluster restarted on the same region) starts as the incarnation its
  // last failover's fence allows; a fresh rank as 0.
  const probe = new ActorDpmControl(dpmLink, 0, settings.controlTimeoutMs);
  const incarnation = await probe.incarnationOf(rank);
  const dpm = new ActorDpmControl(dpmLink, incarnation, settings.controlTimeoutMs);
  const { geometry } = await dpm.describe();
  const fabric = new NativeFabric({
    grant: await dpm.grant(rank),
    regrant: () => dpm.grant(rank),
    host: data.host,
  });
  const { epoch, ownedSlots } = readOwnership(fabric, geometry.metadataOffset, rank);
  let server: KnDataServer | null = null;
  const thread = new KnThread(
    {
      fabric,
      dpm,
      clock,
      ...modeDeps(settings, fabric, geometry),
      index: new IndexReader(fabric, geometry),
      stats: threadStatsView(data.statsBuffer, data.index),
      ownedSlots,
      send: (batch) => server?.onResponses(batch),
      // The DPM server re-checks the chains often (its merge workers cannot be woken from here).
      ringDoorbell: () => {},
    },
    knThreadOptions(settings, rank, epoch),
  );
  await thread.start();
  server = await KnDataServer.listen({
    host: data.host,
    port: 0,
    clock,
    mux: new ClientMux({ maxInflight: settings.inflightMax }),
    deliver: (batch) => thread.enqueue(batch),
  });
  const dataServer = server;
  let endLease: () => void = () => {};
  let stopped = false;
  const close = (): void => {
    if (stopped) return;
    stopped = true;
    endLease();
    void dataServer.close().then(() => {
      dpmLink.close();
      monitorLink.close();
      actors.stop();
      fabric.close();
      port.postMessage({ type: 'stopped' });
      port.close();
    });
  };
  spawnKnControl(actors, thread, rank, close);
  port.on('message', (message: { type?: string }) => {
    if (message.type !== 'stop') return;
    void thread.quiesce().then(() => {
      thread.publishStats();
      close();
    });
  });
  const monitor: ActorRef<MonitorMessage> = {
    address: actorAddress(monitorAddress, monitorActorName),
  };
  endLease = await keepLease(thread, {
    asker: monitorLink,
    monitor,
    clock,
    rank,
    incarnation,
    heartbeatMs: settings.heartbeatMs,
  });
  thread.publishStats();
  port.postMessage({ type: 'ready', port: dataServer.port });
}

main().catch((err: unknown) => {
  console.error('KN thread failed to start:', err);
  process.exit(1);
});
