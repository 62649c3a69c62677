import { DinomoError, fromWireError, type WireError } from '../errors/index.js';
import type { Clock, TimerHandle } from '../time/index.js';
import type { PartitionScanPage } from '../dpm/dpm-manager-core.js';
import type { DpmControl } from './dpm-control.js';

export type ManagerReply =
  | { type: 'alloc-ok'; id: number; blockOffset: number }
  | { type: 'merged'; id: number; mergedLsn: number }
  | { type: 'failed-over'; id: number; mergedLsn: number; incarnation: number }
  | { type: 'created'; id: number; entryOffset: number }
  | ({ type: 'scanned'; id: number } & PartitionScanPage)
  | ({ type: 'error'; id: number } & WireError);

/** The part of a MessagePort this class uses, so the simulator can hand it a simulated channel. */
export interface ControlPort {
  on(event: 'message', listener: (reply: ManagerReply) => void): unknown;
  postMessage(message: object): void;
  close(): void;
}

type AnswerReply = Exclude<ManagerReply, { type: 'error' }>;

interface Waiter {
  resolve: (reply: AnswerReply) => void;
  reject: (err: DinomoError) => void;
  timer: TimerHandle;
}

/**
 * DpmControl over a MessagePort to the DPM manager worker (see src/dpm/dpm-manager-worker.ts for the
 * other side). Requests are rare (one allocation per log block, one merge wait per sealed block
 * under back-pressure), so plain postMessage is fine here. Every request has a deadline and the
 * number of outstanding requests is bounded.
 */
export class PortDpmControl implements DpmControl {
  private readonly port: ControlPort;
  private readonly clock: Clock;
  private readonly timeoutUs: number;
  private readonly waiters = new Map<number, Waiter>();
  private nextId = 1;
  private readonly incarnation: number;
  private static readonly outstandingMax = 1024;

  /** @param incarnation the thread's incarnation: block requests are refused once it is fenced. */
  constructor(port: ControlPort, clock: Clock, timeoutMs: number, incarnation = 0) {
    this.port = port;
    this.clock = clock;
    this.timeoutUs = timeoutMs * 1000;
    this.incarnation = incarnation;
    port.on('message', (reply: ManagerReply) => this.onReply(reply));
  }

  allocBlock(rank: number): Promise<number> {
    const incarnation = this.incarnation;
    return this.requestNumber((id) => ({ type: 'alloc', id, rank, incarnation }));
  }

  reopenChain(rank: number): Promise<number> {
    const incarnation = this.incarnation;
    return this.requestNumber((id) => ({ type: 'reopen', id, rank, incarnation }));
  }

  waitMerged(rank: number, lsn: number): Promise<number> {
    return this.requestNumber((id) => ({ type: 'wait-merged', id, rank, lsn }));
  }

  createLinked(rank: number, entryOffset: number): Promise<number> {
    const incarnation = this.incarnation;
    return this.requestNumber((id) => ({
      type: 'create-linked',
      id,
      rank,
      entryOffset,
      incarnation,
    }));
  }

  async scanPartitions(
    rank: number,
    slots: readonly number[],
    tableVersion: number,
    fromBucket: number,
    keysMax: number,
  ): Promise<PartitionScanPage> {
    const incarnation = this.incarnation;
    const reply = await this.request((id) => ({
      type: 'scan-partitions',
      id,
      rank,
      slots: [...slots],
      tableVersion,
      fromBucket,
      keysMax,
      incarnation,
    }));
    if (reply.type !== 'scanned') throw unexpected(reply);
    return { keys: reply.keys, tableVersion: reply.tableVersion, nextBucket: reply.nextBucket };
  }

  /**
   * For the M-node: fences incarnation `incarnation` of `rank` and resolves once its chain is merged
   * through its commit offsets (to the merged LSN). See the `failover` DPM request.
   */
  failover(rank: number, incarnation: number): Promise<number> {
    return this.requestNumber((id) => ({ type: 'failover', id, rank, incarnation }));
  }

  close(): void {
    for (const [id, waiter] of this.waiters) {
      waiter.timer.cancel();
      waiter.reject(new DinomoError('CLOSED', 'the KN thread is stopping'));
      this.waiters.delete(id);
    }
    this.port.close();
  }

  private async requestNumber(make: (id: number) => object): Promise<number> {
    return replyValue(await this.request(make));
  }

  private request(make: (id: number) => object): Promise<AnswerReply> {
    if (this.waiters.size >= PortDpmControl.outstandingMax) {
      return Promise.reject(
        new DinomoError('OVERLOADED', 'too many outstanding DPM manager requests'),
      );
    }
    const id = this.nextId++;
    return new Promise<AnswerReply>((resolve, reject) => {
      const timer = this.clock.setTimer(this.timeoutUs, () => {
        this.waiters.delete(id);
        reject(new DinomoError('TIMEOUT', 'the DPM manager did not answer in time'));
      });
      this.waiters.set(id, { resolve, reject, timer });
      this.port.postMessage(make(id));
    });
  }

  private onReply(reply: ManagerReply): void {
    const waiter = this.waiters.get(reply.id);
    if (waiter === undefined) return;
    this.waiters.delete(reply.id);
    waiter.timer.cancel();
    if (reply.type === 'error') waiter.reject(fromWireError(reply));
    else waiter.resolve(reply);
  }
}

function replyValue(reply: AnswerReply): number {
  if (reply.type === 'alloc-ok') return reply.blockOffset;
  if (reply.type === 'created') return reply.entryOffset;
  if (reply.type === 'scanned') throw unexpected(reply);
  return reply.mergedLsn;
}

function unexpected(reply: AnswerReply): DinomoError {
  return new DinomoError('INTERNAL', `the DPM manager answered with an unexpected '${reply.type}'`);
}
