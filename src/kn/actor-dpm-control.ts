import { actorAddress, systemAddress, type ActorRef, type Asker } from '../actors/index.js';
import type { PartitionScanPage } from '../dpm/dpm-manager-core.js';
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
 * server's actor over the TCP actor transport, with a deadline. `asker` is the actor system the
 * caller connected to the DPM, or a TcpLink that reconnects after a DPM restart (asks fail with
 * UNAVAILABLE meanwhile, which KN threads treat as transient). The thread's incarnation goes with
 * every block request, so a fenced thread gets FENCED.
 */
export class ActorDpmControl implements DpmControl {
  private readonly system: Asker;
  private readonly incarnation: number;
  private readonly timeoutMs: number;
  private readonly dpm: ActorRef<DpmServerMessage> = {
    address: actorAddress(systemAddress(dpmSystemLocation), dpmActorName),
  };

  constructor(asker: Asker, incarnation: number, timeoutMs: number) {
    this.system = asker;
    this.incarnation = incarnation;
    this.timeoutMs = timeoutMs;
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

  createLinked(rank: number, entryOffset: number): Promise<number> {
    const incarnation = this.incarnation;
    return this.ask((replyTo) => ({
      type: 'create-linked',
      rank,
      incarnation,
      entryOffset,
      replyTo,
    }));
  }

  scanPartitions(
    rank: number,
    slots: readonly number[],
    tableVersion: number,
    fromBucket: number,
    keysMax: number,
  ): Promise<PartitionScanPage> {
    return this.system.ask<DpmServerMessage, PartitionScanPage>(
      this.dpm,
      (replyTo) => ({
        type: 'scan-partitions',
        rank,
        incarnation: this.incarnation,
        slots: [...slots],
        tableVersion,
        fromBucket,
        keysMax,
        replyTo,
      }),
      this.timeoutMs,
    );
  }

  /** The fabric grant of this thread's rank and incarnation. */
  grant(rank: number): Promise<FabricGrant> {
    return this.system.ask<DpmServerMessage, FabricGrant>(
      this.dpm,
      (replyTo) => ({ type: 'grant', rank, incarnation: this.incarnation, replyTo }),
      this.timeoutMs,
    );
  }

  /** The incarnation a process taking over `rank` must run as (its fence allows no lower one). */
  incarnationOf(rank: number): Promise<number> {
    return this.ask((replyTo) => ({ type: 'incarnation', rank, replyTo }));
  }

  /** Fences `rank`'s `incarnation` (fabric first) and merges its chain through its commit word. */
  failover(rank: number, incarnation: number): Promise<number> {
    return this.ask((replyTo) => ({ type: 'failover', rank, incarnation, replyTo }));
  }

  /** The persisted slot map (16384 u16 little-endian owners) and its epoch. */
  readMap(): Promise<{ epoch: number; slotMap: Uint8Array }> {
    return this.system.ask<DpmServerMessage, { epoch: number; slotMap: Uint8Array }>(
      this.dpm,
      (replyTo) => ({ type: 'read-map', replyTo }),
      this.timeoutMs,
    );
  }

  /** Records a whole slot map and its epoch; resolves once they are durable. */
  async writeMap(slotMap: Uint8Array, epoch: number): Promise<void> {
    await this.system.ask<DpmServerMessage, null>(
      this.dpm,
      (replyTo) => ({ type: 'write-map', slotMap, epoch, replyTo }),
      this.timeoutMs,
    );
  }

  /** Records `owner` for `slots` and the new epoch; resolves once they are durable. */
  async writeOwners(slots: readonly number[], owner: number, epoch: number): Promise<void> {
    await this.system.ask<DpmServerMessage, null>(
      this.dpm,
      (replyTo) => ({ type: 'write-owners', slots: [...slots], owner, epoch, replyTo }),
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
