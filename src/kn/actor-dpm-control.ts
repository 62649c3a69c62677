import { actorAddress, systemAddress, type ActorRef, type ActorSystem } from '../actors/index.js';
import type { FabricGrant } from '../fabric/grant.js';
import {
  dpmActorName,
  dpmSystemLocation,
  type DpmDescription,
  type DpmServerMessage,
} from '../dpm/dpm-server-protocol.js';
import type { DpmControl } from './dpm-control.js';

/**
 * DpmControl for a KN thread in another process than the DPM: each request is an ask to the DPM
 * server's actor over the TCP actor transport (which the caller connected), with a deadline. The
 * thread's incarnation goes with every block request, so a fenced thread gets FENCED.
 */
export class ActorDpmControl implements DpmControl {
  private readonly system: ActorSystem;
  private readonly incarnation: number;
  private readonly timeoutMs: number;
  private readonly dpm: ActorRef<DpmServerMessage>;

  constructor(system: ActorSystem, incarnation: number, timeoutMs: number) {
    this.system = system;
    this.incarnation = incarnation;
    this.timeoutMs = timeoutMs;
    this.dpm = system.remoteRef<DpmServerMessage>(
      actorAddress(systemAddress(dpmSystemLocation), dpmActorName),
    );
  }

  allocBlock(rank: number): Promise<number> {
    return this.ask((replyTo) => ({ type: 'alloc', rank, incarnation: this.incarnation, replyTo }));
  }

  reopenChain(rank: number): Promise<number> {
    return this.ask((replyTo) => ({
      type: 'reopen',
      rank,
      incarnation: this.incarnation,
      replyTo,
    }));
  }

  waitMerged(rank: number, lsn: number): Promise<number> {
    return this.ask((replyTo) => ({ type: 'wait-merged', rank, lsn, replyTo }));
  }

  /** The fabric grant of this thread's rank and incarnation. */
  grant(rank: number): Promise<FabricGrant> {
    return this.system.ask<DpmServerMessage, FabricGrant>(
      this.dpm,
      (replyTo) => ({ type: 'grant', rank, incarnation: this.incarnation, replyTo }),
      this.timeoutMs,
    );
  }

  describe(): Promise<DpmDescription> {
    return this.system.ask<DpmServerMessage, DpmDescription>(
      this.dpm,
      (replyTo) => ({ type: 'describe', replyTo }),
      this.timeoutMs,
    );
  }

  private ask(
    make: (replyTo: Extract<DpmServerMessage, { type: 'alloc' }>['replyTo']) => DpmServerMessage,
  ): Promise<number> {
    return this.system.ask<DpmServerMessage, number>(this.dpm, make, this.timeoutMs);
  }
}
