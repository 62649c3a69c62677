import type { ReplyTo } from '../actors/index.js';
import type { KnThreadSettings, MonitorMessage } from '../kn/index.js';
import type { RnMessage } from '../routing/index.js';

/** Where a process finds the DPM server's control port. */
export interface HostPort {
  host: string;
  port: number;
}

/** What the monitor tells a KN process that joins: who it is and how its threads run. */
export interface JoinAnswer {
  knId: number;
  /** The KN thread ranks this KN runs, one per thread. */
  ranks: number[];
  dpm: HostPort;
  settings: KnThreadSettings;
}

/**
 * Requests of a KN process's main thread to the monitor. A KN joins in two steps: `join` gives it
 * an id and fresh ranks (never used before in this run of the monitor); once every thread has its
 * fabric grant, its log block and its data port, `joined` makes it a member: its threads' leases
 * start, and a KN beyond the initial ones is given about 1/N of the slots. `leave` moves its slots
 * to the other KNs and then stops its threads (answered once they stopped).
 */
export type KnProcessMessage =
  | { type: 'join'; threads: number; replyTo: ReplyTo<JoinAnswer> }
  | {
      type: 'joined';
      knId: number;
      endpoints: Array<{ rank: number; host: string; port: number }>;
      replyTo: ReplyTo<null>;
    }
  | { type: 'leave'; knId: number; replyTo: ReplyTo<null> };

/** Everything the monitor's actor answers: heartbeats, KN membership and the RN's routing. */
export type MonitorServerMessage = MonitorMessage | KnProcessMessage | RnMessage;
