import {
  FailureDetector,
  initialReconfigState,
  reconfigStep,
  type HeartbeatAnswer,
  type MergeFence,
  type ReconfigInput,
  type ReconfigOutput,
  type ReconfigState,
} from '../monitor/index.js';
import type { ActorRef, Asker } from '../actors/index.js';
import type { KnControlMessage, KnPong, KnReleased } from '../kn/index.js';
import type { SlotMove } from '../routing/index.js';
import type { Clock, TimerHandle } from '../time/index.js';

/** One finished slot move: which slots paused, and for how long. */
export interface MoveReport {
  from: number;
  to: number;
  slots: number;
  /** From the old owner starting to refuse the slots to the new owner taking their writes. */
  pauseMs: number;
  /** From the old owner starting to refuse the slots to the new owner serving their reads. */
  readPauseMs: number;
}

/** What the monitor asks of the cluster around it (KN threads, the DPM, its cluster metadata). */
export interface ElasticMonitorDeps {
  clock: Clock;
  /** The epoch of the slot map persisted in the DPM when the monitor starts. */
  initialEpoch: number;
  /** The published slot map clients route by; changed in place once an epoch is persisted. */
  slotMap: Uint16Array;
  /** Resolves with the thread's committed LSN once it stopped serving the slots. */
  release(rank: number, slots: number[]): Promise<number>;
  /** Resolves once the thread serves reads of the slots (the `waitFor` chains are merged). */
  acquire(rank: number, slots: number[], epoch: number, waitFor: MergeFence[]): Promise<void>;
  failover(rank: number, incarnation: number): Promise<void>;
  /** False once the rank's thread is known dead or removed: asks to it are not retried. */
  reachable(rank: number): boolean;
  /** The detector suspects `rank` (no heartbeat for suspectAfterUs). */
  onSuspect(rank: number): void;
  /**
   * Records `owner` for `slots` and the new `epoch` in the DPM's cluster metadata, durably: with
   * durability 'sync' the records must be in the region's file before this resolves. A KN thread
   * that writes in the new epoch must never have entries in the file under an epoch the file does
   * not record, or a restart after an OS crash would reuse that epoch and its writes could lose to
   * older ones. Rejects if the records may not be durable; the monitor retries after retryUs.
   */
  persistOwners(slots: readonly number[], owner: number, epoch: number): Promise<void>;
}

export interface ElasticMonitorOptions {
  leaseUs: number;
  suspectAfterUs: number;
  heartbeatUs: number;
  /** Pause before asking again after a step failed. */
  retryUs: number;
}

interface PendingMove {
  startUs: number;
  /** When the new owner was asked to take the slots (their writes flow from about then). */
  acquireUs: number | null;
  resolve: (report: MoveReport) => void;
}

/**
 * The M-node of an embedded cluster: the pure reconfiguration step function and failure detector
 * of src/monitor, with their outputs performed on worker threads (actor asks), on the DPM manager
 * (failover) and on the region's cluster metadata (persist). The simulator's SimMonitor performs the
 * same outputs over simulated messages.
 */
export class ElasticMonitor {
  readonly detector: FailureDetector;
  private state: ReconfigState;
  private readonly moves = new Map<number, PendingMove>();
  private readonly failovers = new Map<number, Array<() => void>>();
  private checkTimer: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly deps: ElasticMonitorDeps,
    private readonly options: ElasticMonitorOptions,
  ) {
    this.state = initialReconfigState(deps.initialEpoch);
    this.detector = new FailureDetector({
      leaseUs: options.leaseUs,
      suspectAfterUs: options.suspectAfterUs,
    });
  }

  start(): void {
    const check = (): void => {
      if (this.stopped) return;
      for (const rank of this.detector.suspects(this.deps.clock.nowUs())) this.deps.onSuspect(rank);
      this.checkTimer = this.deps.clock.setTimer(this.options.heartbeatUs, check);
    };
    this.checkTimer = this.deps.clock.setTimer(this.options.heartbeatUs, check);
  }

  stop(): void {
    this.stopped = true;
    this.checkTimer?.cancel();
  }

  heartbeat(rank: number, incarnation: number): HeartbeatAnswer {
    return this.detector.heartbeat(rank, incarnation, this.deps.clock.nowUs());
  }

  /** Queues a move; resolves when the new owner serves the slots. */
  move(move: SlotMove): Promise<MoveReport> {
    const id = this.state.nextMoveId;
    const done = new Promise<MoveReport>((resolve) =>
      this.moves.set(id, { startUs: this.deps.clock.nowUs(), acquireUs: null, resolve }),
    );
    this.feed({ type: 'move', move });
    return done;
  }

  /** Declares `rank` failed; resolves once it is fenced and its log merged. */
  fail(rank: number): Promise<void> {
    const done = new Promise<void>((resolve) => {
      const list = this.failovers.get(rank) ?? [];
      list.push(resolve);
      this.failovers.set(rank, list);
    });
    this.detector.markFailed(rank);
    this.feed({ type: 'failed', rank });
    return done;
  }

  private feed(input: ReconfigInput): void {
    if (this.stopped) return;
    const { state, outputs } = reconfigStep(this.state, input);
    this.state = state;
    for (const output of outputs) this.perform(output);
  }

  /** Feeds a step's completion later, never from inside `perform` (outputs stay in order). */
  private later(input: ReconfigInput): void {
    void Promise.resolve().then(() => this.feed(input));
  }

  private perform(output: ReconfigOutput): void {
    const { deps } = this;
    switch (output.type) {
      case 'release': {
        const pending = this.moves.get(output.moveId);
        if (pending !== undefined) pending.startUs = deps.clock.nowUs();
        this.retrying(
          output.rank,
          () => deps.release(output.rank, output.slots),
          (lsn) => this.later({ type: 'released', moveId: output.moveId, lsn }),
        );
        return;
      }
      case 'persist':
        this.persist(output.slots, output.owner, output.epoch, () =>
          this.later({ type: 'persisted', moveId: output.moveId }),
        );
        return;
      case 'acquire': {
        const pending = this.moves.get(output.moveId);
        if (pending !== undefined) pending.acquireUs ??= deps.clock.nowUs();
        this.retrying(
          output.rank,
          () => deps.acquire(output.rank, output.slots, output.epoch, output.waitFor),
          () => this.later({ type: 'acquired', moveId: output.moveId }),
        );
        return;
      }
      case 'failover':
        this.failover(output.rank);
        return;
      case 'done': {
        const pending = this.moves.get(output.moveId);
        this.moves.delete(output.moveId);
        if (pending === undefined) return;
        const nowUs = deps.clock.nowUs();
        pending.resolve({
          from: output.move.from,
          to: output.move.to,
          slots: output.move.slots.length,
          pauseMs: ((pending.acquireUs ?? nowUs) - pending.startUs) / 1000,
          readPauseMs: (nowUs - pending.startUs) / 1000,
        });
        return;
      }
    }
  }

  /** Runs `step` until it succeeds, while the rank can still answer. */
  private retrying<T>(rank: number, step: () => Promise<T>, done: (value: T) => void): void {
    step().then(done, () => {
      if (this.stopped || !this.deps.reachable(rank)) return;
      this.deps.clock.setTimer(this.options.retryUs, () => this.retrying(rank, step, done));
    });
  }

  /**
   * Waits until the failed thread's lease has ended (after that it serves nothing, even if it still
   * runs), then has the DPM fence it and merge its log; retried until the DPM answers.
   */
  private failover(rank: number): void {
    const incarnation = this.detector.incarnationOf(rank);
    const waitUs = Math.max(0, this.detector.leaseExpiryUs(rank) - this.deps.clock.nowUs());
    const attempt = (): void => {
      if (this.stopped) return;
      this.deps.failover(rank, incarnation).then(
        () => {
          for (const resolve of this.failovers.get(rank) ?? []) resolve();
          this.failovers.delete(rank);
          this.later({ type: 'failed-over', rank });
        },
        () => this.deps.clock.setTimer(this.options.retryUs, attempt),
      );
    };
    this.deps.clock.setTimer(waitUs + 1, attempt);
  }

  /**
   * Persists the owners and the epoch (deps.persistOwners), then publishes the map; retried after
   * retryUs until the records are durable, and the move waits meanwhile.
   */
  private persist(slots: readonly number[], owner: number, epoch: number, done: () => void): void {
    if (this.stopped) return;
    this.deps.persistOwners(slots, owner, epoch).then(
      () => {
        if (this.stopped) return;
        for (const slot of slots) this.deps.slotMap[slot] = owner;
        done();
      },
      (err: unknown) => {
        console.error(`dinomo: cannot persist epoch ${epoch} in the DPM; retrying:`, err);
        this.deps.clock.setTimer(this.options.retryUs, () =>
          this.persist(slots, owner, epoch, done),
        );
      },
    );
  }
}

/**
 * The `release` and `acquire` steps performed as asks to each KN thread's control actor, wherever
 * it runs (a worker thread of this process, or a thread of a KN process).
 */
export function knControlSteps(
  asker: Asker,
  controlRef: (rank: number) => ActorRef<KnControlMessage>,
  timeoutMs: number,
): Pick<ElasticMonitorDeps, 'release' | 'acquire'> {
  return {
    release: async (rank, slots) => {
      const answer = await asker.ask<KnControlMessage, KnReleased>(
        controlRef(rank),
        (replyTo) => ({ type: 'release', slots, replyTo }),
        timeoutMs,
      );
      return answer.lsn;
    },
    acquire: async (rank, slots, epoch, waitFor) => {
      await asker.ask<KnControlMessage, KnPong>(
        controlRef(rank),
        (replyTo) => ({ type: 'acquire', slots, epoch, waitFor, replyTo }),
        timeoutMs,
      );
    },
  };
}
