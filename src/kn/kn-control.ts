import type { ReplyTo } from '../actors/index.js';
import type { MergeFence } from './kn-thread.js';

/**
 * The control protocol of a KN thread, carried by the actor runtime (a `control` actor in each KN
 * worker, reached from the main thread over a cbor-x PortTransport). The data path does not use
 * actors: request batches travel on the worker port (DESIGN.md section 9).
 */
export type KnControlMessage =
  | { type: 'stop'; replyTo: ReplyTo<KnStopped> }
  | { type: 'ping'; replyTo: ReplyTo<KnPong> }
  /** Hand slots over (KnThread.releaseSlots): answered once the open batch is committed. */
  | { type: 'release'; slots: number[]; replyTo: ReplyTo<KnReleased> }
  /**
   * Start serving slots in `epoch` (KnThread.acquireSlots): writes at once, reads once the chains in
   * `waitFor` are merged through their LSNs; answered then.
   */
  | {
      type: 'acquire';
      slots: number[];
      epoch: number;
      waitFor: MergeFence[];
      replyTo: ReplyTo<KnPong>;
    };

/**
 * The M-node's actor in the main thread of an embedded cluster: KN threads ask it for their lease
 * with a heartbeat stamped with its send time. The answer is a HeartbeatAnswer (src/monitor).
 */
export type MonitorMessage = {
  type: 'heartbeat';
  rank: number;
  incarnation: number;
  replyTo: ReplyTo<{ granted: boolean; leaseUs?: number; reason?: string }>;
};

export const monitorActorName = 'monitor';

/** Answer to `stop`: every queued request was answered and every staged write committed. */
export interface KnStopped {
  rank: number;
  committedEntries: number;
}

export interface KnPong {
  rank: number;
}

/** Answer to `release`: the thread's committed LSN when it stopped serving the slots. */
export interface KnReleased {
  rank: number;
  lsn: number;
}

export const knControlActorName = 'control';

/** Actor-system location of the main thread and of KN thread `rank` in an embedded cluster. */
export function embeddedLocation(
  pid: number,
  thread: string,
): { node: string; process: number; thread: string } {
  return { node: 'embedded', process: pid, thread };
}

export function knThreadName(rank: number): string {
  return `kn-${rank}`;
}

/**
 * Actor-system location of KN thread `rank` of KN `knId` in a multi-process cluster: the monitor
 * reaches the thread's control actor there, over the connection the thread opened to it.
 */
export function knProcessThreadLocation(
  knId: number,
  rank: number,
): { node: string; process: number; thread: string } {
  return { node: 'kn', process: knId, thread: knThreadName(rank) };
}
