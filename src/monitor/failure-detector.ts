import { assert } from '../util/assert.js';

/**
 * Heartbeats, leases and suspicion on the M-node (DESIGN.md section 8, "KN failure" and "Leases").
 * Time is passed in (the M-node's injected clock); nothing here reads a clock or sets a timer.
 *
 * Lease rule: a KN thread sends a heartbeat stamped with its send time `sentUs` and, when it is
 * granted, holds its lease until `sentUs + leaseUs`. The M-node grants at `nowUs >= sentUs` and
 * records the lease as running until `nowUs + leaseUs`, never earlier than what the thread believes.
 * So once the M-node's record has passed, the thread's own lease has too, and it no longer serves
 * (both sides read one clock in this process; across machines the M-node would add the drift bound).
 */
export interface FailureDetectorOptions {
  /** How long a granted lease lasts. */
  leaseUs: number;
  /** A thread whose last heartbeat is older than this is suspected. Must exceed the heartbeat period. */
  suspectAfterUs: number;
}

export type HeartbeatAnswer =
  { granted: true; leaseUs: number } | { granted: false; reason: string };

interface Member {
  incarnation: number;
  lastHeartbeatUs: number;
  leaseUntilUs: number;
  failed: boolean;
}

export class FailureDetector {
  private readonly options: FailureDetectorOptions;
  private readonly members = new Map<number, Member>();

  constructor(options: FailureDetectorOptions) {
    assert(options.leaseUs > 0 && options.suspectAfterUs > 0, 'positive lease and suspicion times');
    this.options = options;
  }

  /**
   * A thread incarnation joins (at cluster start, on add, or on a restart with the same rank, which
   * comes with the incarnation the DPM's failover handed out). It holds a lease from `nowUs`.
   */
  register(rank: number, incarnation: number, nowUs: number): number {
    const leaseUntilUs = nowUs + this.options.leaseUs;
    this.members.set(rank, { incarnation, lastHeartbeatUs: nowUs, leaseUntilUs, failed: false });
    return leaseUntilUs;
  }

  /** A thread left cleanly (its slots were moved away first): it is no longer watched. */
  unregister(rank: number): void {
    this.members.delete(rank);
  }

  heartbeat(rank: number, incarnation: number, nowUs: number): HeartbeatAnswer {
    const member = this.members.get(rank);
    if (member === undefined)
      return { granted: false, reason: `KN thread ${rank} is not a member` };
    if (incarnation !== member.incarnation) {
      return { granted: false, reason: `incarnation ${incarnation} was replaced` };
    }
    if (member.failed) return { granted: false, reason: `KN thread ${rank} was declared failed` };
    member.lastHeartbeatUs = Math.max(member.lastHeartbeatUs, nowUs);
    member.leaseUntilUs = Math.max(member.leaseUntilUs, nowUs + this.options.leaseUs);
    return { granted: true, leaseUs: this.options.leaseUs };
  }

  /** Live members whose heartbeats stopped; the caller declares them failed (markFailed). */
  suspects(nowUs: number): number[] {
    const ranks: number[] = [];
    for (const [rank, m] of this.members) {
      if (!m.failed && nowUs - m.lastHeartbeatUs > this.options.suspectAfterUs) ranks.push(rank);
    }
    return ranks.sort((a, b) => a - b);
  }

  /**
   * Declares the rank failed: its heartbeats are refused from now on (so a paused thread that wakes
   * up learns it lost its slots), and its lease is never extended again. Returns when that lease
   * ends: the failover may fence and reassign only after it.
   */
  markFailed(rank: number): number {
    const member = this.members.get(rank);
    if (member === undefined) return 0;
    member.failed = true;
    return member.leaseUntilUs;
  }

  /** When the rank's lease ends, as the M-node granted it (0 for an unknown rank). */
  leaseExpiryUs(rank: number): number {
    return this.members.get(rank)?.leaseUntilUs ?? 0;
  }

  /** The incarnation of `rank` the detector watches (the one a failover fences). */
  incarnationOf(rank: number): number {
    return this.members.get(rank)?.incarnation ?? 0;
  }
}
