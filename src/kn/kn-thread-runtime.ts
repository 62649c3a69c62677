/**
 * The parts of a KN thread's worker that do not depend on where it runs: its control actor (ping,
 * release, acquire, stop), its lease loop with the M-node, and the first read of its ownership from
 * the DPM's cluster metadata. The embedded worker (kn-worker.ts) and the worker of a KN process
 * (kn-process-worker.ts) both use them.
 */
import type { ActorRef, ActorSystem, Asker } from '../actors/index.js';
import { Metadata } from '../dpm/layout.js';
import type { RegionGeometry } from '../dpm/region.js';
import type { Fabric } from '../fabric/index.js';
import type { Clock, TimerHandle } from '../time/index.js';
import { ChainWalker } from './clover-chain.js';
import { Dac } from './dac.js';
import { knControlActorName, type KnControlMessage, type MonitorMessage } from './kn-control.js';
import type { KnThread, KnThreadDeps, KnThreadOptions } from './kn-thread.js';
import type { KnThreadSettings } from './kn-worker-data.js';

const slotCount = 16384;

/**
 * Spawns the thread's `control` actor. `onStopped` runs after a `stop` was answered: the thread
 * committed and acknowledged everything it staged, and the worker may close its channels.
 */
export function spawnKnControl(
  actors: ActorSystem,
  thread: KnThread,
  rank: number,
  onStopped: () => void,
): void {
  actors.spawn<null, KnControlMessage>(knControlActorName, {
    initialState: null,
    handle: async (state, msg, ctx) => {
      if (msg.type === 'ping') {
        ctx.reply(msg.replyTo, { rank });
        return state;
      }
      if (msg.type === 'release') {
        const lsn = await thread.releaseSlots(msg.slots);
        ctx.reply(msg.replyTo, { rank, lsn });
        return state;
      }
      if (msg.type === 'acquire') {
        // Answered once the previous owners' logs are merged; the actor takes messages meanwhile.
        thread.acquireSlots(msg.slots, msg.epoch, msg.waitFor).then(
          () => ctx.reply(msg.replyTo, { rank }),
          (err: unknown) => ctx.replyError(msg.replyTo, err),
        );
        return state;
      }
      await thread.quiesce();
      thread.publishStats();
      ctx.reply(msg.replyTo, { rank, committedEntries: thread.committedEntries });
      onStopped();
      return state;
    },
  });
}

export interface LeaseLoopOptions {
  asker: Asker;
  monitor: ActorRef<MonitorMessage>;
  clock: Clock;
  rank: number;
  incarnation: number;
  heartbeatMs: number;
}

/**
 * The heartbeat loop: every heartbeatMs the thread asks the M-node for its lease, stamping the
 * request with its send time; a grant extends the lease from that time (never beyond what the
 * M-node recorded), a refusal retires the thread (it was declared failed, and its slots moved).
 * Resolves after the first heartbeat was answered or failed; returns a function that ends the loop.
 */
export async function keepLease(thread: KnThread, o: LeaseLoopOptions): Promise<() => void> {
  let stopped = false;
  const beat = async (): Promise<void> => {
    if (thread.retired !== null || stopped) return;
    const sentUs = o.clock.nowUs();
    try {
      const answer = await o.asker.ask<
        MonitorMessage,
        { granted: boolean; leaseUs?: number; reason?: string }
      >(
        o.monitor,
        (replyTo) => ({ type: 'heartbeat', rank: o.rank, incarnation: o.incarnation, replyTo }),
        o.heartbeatMs * 10,
      );
      if (answer.granted) thread.extendLease(sentUs + (answer.leaseUs ?? 0));
      else thread.retire(answer.reason ?? 'refused by the M-node');
    } catch {
      // No answer: the lease simply runs out unless a later heartbeat gets through.
    }
  };
  let timer: TimerHandle | null = null;
  const loop = (): void => {
    if (stopped) return;
    void beat();
    timer = o.clock.setTimer(o.heartbeatMs * 1000, loop);
  };
  await beat();
  if (!stopped) timer = o.clock.setTimer(o.heartbeatMs * 1000, loop);
  return () => {
    stopped = true;
    timer?.cancel();
  };
}

/** Reads the epoch and this rank's slots from the cluster metadata (one RT). */
export function readOwnership(
  fabric: Fabric,
  metadataOffset: number,
  rank: number,
): { epoch: number; ownedSlots: Uint8Array } {
  const bytes = new Uint8Array(Metadata.slotMap + slotCount * 2);
  fabric.read(metadataOffset, bytes.length, bytes);
  const view = new DataView(bytes.buffer);
  const ownedSlots = new Uint8Array(slotCount);
  for (let slot = 0; slot < slotCount; slot++) {
    ownedSlots[slot] = view.getUint16(Metadata.slotMap + slot * 2, true) === rank ? 1 : 0;
  }
  return { epoch: view.getUint32(Metadata.epoch, true), ownedSlots };
}

/** KnThread's options from the cluster-wide settings; no lease until the M-node grants one. */
export function knThreadOptions(
  settings: KnThreadSettings,
  rank: number,
  epoch: number,
): KnThreadOptions {
  return {
    mode: settings.mode,
    rank,
    epoch,
    blockBytes: settings.blockBytes,
    recentBlocks: settings.recentBlocks,
    groupCommitUs: settings.groupCommitUs,
    groupCommitBytes: settings.groupCommitBytes,
    inflightMax: settings.inflightMax,
    // The first heartbeat goes out before the thread reports ready.
    leaseUntilUs: 0,
  };
}

/**
 * The deps of a KN thread that depend on the engine mode (docs/baselines.md), as the simulator
 * builds them: a clover-mode thread caches only shortcuts, since another KN may have written a
 * newer version at any time, and reads and links versions through a chain walker. DINOMO and
 * DINOMO-N threads use the adaptive DAC and no walker.
 */
export function modeDeps(
  settings: KnThreadSettings,
  fabric: Fabric,
  geometry: RegionGeometry,
): Pick<KnThreadDeps, 'dac' | 'chain'> {
  const clover = settings.mode === 'clover';
  const dac = new Dac({ capacityBytes: settings.cacheBytes, shortcutsOnly: clover });
  return clover ? { dac, chain: new ChainWalker(fabric, geometry) } : { dac };
}
