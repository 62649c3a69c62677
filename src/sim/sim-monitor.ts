import type { Mutants } from '../config/mutants.js';
import { writeSlotOwners } from '../dpm/cluster-metadata.js';
import type { DpmToKnMessage } from '../dpm/dpm-protocol.js';
import type { KnThread } from '../kn/kn-thread.js';
import {
  FailureDetector,
  initialReconfigState,
  reconfigStep,
  type HeartbeatAnswer,
  type ReconfigInput,
  type ReconfigOutput,
  type ReconfigState,
} from '../monitor/index.js';
import type { SlotMove } from '../routing/index.js';
import type { Simulation } from './event-loop.js';
import { dpmNode, type SimDpm } from './sim-dpm.js';
import type { SimHost } from './sim-host.js';
import type { SimNetwork } from './sim-network.js';

export const monitorNode = 'monitor';

export interface MoveRecord {
  move: SlotMove;
  startUs: number;
  doneUs: number | null;
}

/** One failover: when the thread was suspected, and when its chain was fenced and merged. */
export interface FailoverRecord {
  rank: number;
  suspectedUs: number;
  failedOverUs: number | null;
}

export interface SimMonitorOptions {
  retryUs: number;
  heartbeatUs: number;
  leaseUs: number;
  suspectAfterUs: number;
  mutants: Mutants;
}

/** The current incarnation of a KN thread rank, as the monitor reaches it. */
export interface SimKnHandle {
  thread: KnThread;
  host: SimHost;
}

/**
 * The M-node in the simulator: the pure reconfiguration step function and the failure detector,
 * with their outputs performed as simulated messages to KN threads and to the DPM (the write of the
 * new epoch and slot owners, and failovers). The published slot map (`slotMap`, read by clients)
 * changes in place once an epoch is persisted. A step that fails (the DPM was down, a merge wait
 * timed out) is retried after `retryUs`.
 */
export class SimMonitor {
  readonly moves: MoveRecord[] = [];
  readonly failovers: FailoverRecord[] = [];
  readonly detector: FailureDetector;
  private state: ReconfigState;
  private readonly records = new Map<number, MoveRecord>();

  constructor(
    private readonly sim: Simulation,
    private readonly network: SimNetwork,
    private readonly dpm: SimDpm,
    private readonly knAt: (rank: number) => SimKnHandle | undefined,
    private readonly slotMap: Uint16Array,
    private readonly options: SimMonitorOptions,
    private readonly onSuspect: (rank: number) => void,
  ) {
    this.state = initialReconfigState(1);
    this.detector = new FailureDetector({
      leaseUs: options.leaseUs,
      suspectAfterUs: options.suspectAfterUs,
    });
    this.scheduleCheck();
  }

  get busy(): boolean {
    return this.state.active !== null || this.state.queue.length > 0;
  }

  /** The reconfiguration state, for diagnostics of a stuck run. */
  describe(): string {
    const { active, queue, failed, failedOver, epoch } = this.state;
    const a = active === null ? 'none' : `${active.move.from}->${active.move.to} ${active.phase}`;
    return `epoch ${epoch}, active ${a}, queued ${queue.length}, failed [${failed.join(',')}], failed over [${failedOver.join(',')}]`;
  }

  move(move: SlotMove): void {
    this.feed({ type: 'move', move });
  }

  /** Declares `rank` failed: its moves wait for the failover, which starts after its lease ends. */
  fail(rank: number): void {
    this.failovers.push({ rank, suspectedUs: this.sim.nowUs(), failedOverUs: null });
    this.detector.markFailed(rank);
    this.feed({ type: 'failed', rank });
  }

  /** True once the failover of `rank` finished (it was fenced and its chain merged). */
  isFailedOver(rank: number): boolean {
    return this.state.failedOver.includes(rank);
  }

  /** A new incarnation of `rank` joined: it holds a lease from now and releases normally again. */
  rejoined(rank: number, incarnation: number): void {
    this.detector.register(rank, incarnation, this.sim.nowUs());
    this.feed({ type: 'rejoined', rank });
  }

  /** A heartbeat arriving from KN thread `rank`; `answer` goes back over the network. */
  heartbeat(rank: number, incarnation: number, answer: (a: HeartbeatAnswer) => void): void {
    answer(this.detector.heartbeat(rank, incarnation, this.sim.nowUs()));
  }

  private scheduleCheck(): void {
    this.sim.schedule(this.options.heartbeatUs, 'monitor-check', () => {
      for (const rank of this.detector.suspects(this.sim.nowUs())) this.onSuspect(rank);
      this.scheduleCheck();
    });
  }

  private feed(input: ReconfigInput): void {
    const { state, outputs } = reconfigStep(this.state, input);
    this.state = state;
    for (const output of outputs) this.perform(output);
  }

  private perform(output: ReconfigOutput): void {
    this.sim.mix(`monitor:${output.type}:${'moveId' in output ? output.moveId : output.rank}`);
    switch (output.type) {
      case 'failover':
        this.failover(output.rank);
        return;
      case 'release': {
        if (!this.records.has(output.moveId)) {
          const record: MoveRecord = {
            move: { slots: output.slots, from: output.rank, to: -1 },
            startUs: this.sim.nowUs(),
            doneUs: null,
          };
          this.records.set(output.moveId, record);
          this.moves.push(record);
        }
        this.ask(
          output.rank,
          (t) => t.releaseSlots(output.slots),
          (lsn) => this.feed({ type: 'released', moveId: output.moveId, lsn }),
        );
        return;
      }
      case 'persist':
        this.persist(output);
        return;
      case 'acquire':
        this.ask(
          output.rank,
          (t) => t.acquireSlots(output.slots, output.epoch, output.waitFor),
          () => this.feed({ type: 'acquired', moveId: output.moveId }),
        );
        return;
      case 'done': {
        const record = this.records.get(output.moveId);
        if (record !== undefined) {
          record.move = output.move;
          record.doneUs = this.sim.nowUs();
        }
        return;
      }
    }
  }

  /**
   * Waits until the failed thread's lease has ended (from then on it serves nothing, even if it is
   * only paused), then asks the DPM to fence it and merge its chain; retried until the DPM answers.
   */
  private failover(rank: number): void {
    const waitUs =
      this.options.mutants.noFencing === true
        ? 0
        : Math.max(0, this.detector.leaseExpiryUs(rank) - this.sim.nowUs());
    let done = false;
    const incarnation = this.detector.incarnationOf(rank);
    const attempt = (): void => {
      if (done) return;
      this.network.send(monitorNode, dpmNode, () => {
        this.dpm.deliver(
          (answer) =>
            this.network.send(dpmNode, monitorNode, () => {
              const reply = answer as DpmToKnMessage;
              if (done || reply.type !== 'failed-over') return;
              done = true;
              for (const record of this.failovers) {
                if (record.rank === rank && record.failedOverUs === null) {
                  record.failedOverUs = this.sim.nowUs();
                }
              }
              this.feed({ type: 'failed-over', rank });
            }),
          { type: 'failover', id: 0, rank, incarnation },
          this.dpm.incarnation,
        );
      });
      // No answer (the DPM crashed, or refused): ask again. A repeated failover is harmless.
      this.sim.schedule(this.options.retryUs * 10, 'monitor-failover-retry', attempt);
    };
    this.sim.schedule(waitUs, 'monitor-lease-wait', attempt);
  }

  /**
   * Sends a request to the current incarnation of KN thread `rank`, and its completion back. It is
   * sent again when it fails or no answer came in time (the message or the answer may be lost); both
   * steps are idempotent, and only the first completion counts. It goes to that incarnation only:
   * once it is replaced, retired or dead, its moves end through its failover instead.
   */
  private ask<T>(rank: number, step: (t: KnThread) => Promise<T>, done: (value: T) => void): void {
    const target = this.knAt(rank);
    if (target === undefined) return;
    const current = (): boolean =>
      this.knAt(rank)?.thread === target.thread &&
      target.thread.retired === null &&
      !target.host.crashed;
    let answered = false;
    const finish = (value: T): void => {
      if (answered) return;
      answered = true;
      done(value);
    };
    const attempt = (): void => {
      if (answered || !current()) return;
      this.network.send(monitorNode, `kn${rank}`, () => {
        if (!current()) return;
        target.host.run(() => {
          step(target.thread).then(
            (value) => this.network.send(`kn${rank}`, monitorNode, () => finish(value)),
            () => undefined,
          );
        });
      });
      this.sim.schedule(this.options.retryUs * 10, 'monitor-ask-retry', attempt);
    };
    attempt();
  }

  /** Writes the new epoch and owners into the DPM's cluster metadata, then publishes the map. */
  private persist(output: Extract<ReconfigOutput, { type: 'persist' }>): void {
    this.network.send(monitorNode, dpmNode, () => {
      if (!this.dpm.up) {
        this.sim.schedule(this.options.retryUs, 'monitor-retry', () => this.persist(output));
        return;
      }
      const { view, geometry } = this.dpm.region;
      writeSlotOwners(view, geometry.metadataOffset, output.slots, output.owner, output.epoch);
      this.network.send(dpmNode, monitorNode, () => {
        for (const slot of output.slots) this.slotMap[slot] = output.owner;
        this.feed({ type: 'persisted', moveId: output.moveId });
      });
    });
  }
}
