import { Metadata } from '../dpm/layout.js';
import type { KnThread } from '../kn/kn-thread.js';
import {
  initialReconfigState,
  reconfigStep,
  type ReconfigInput,
  type ReconfigOutput,
  type ReconfigState,
} from '../monitor/index.js';
import type { SlotMove } from '../routing/index.js';
import type { Simulation } from './event-loop.js';
import type { SimDpm } from './sim-dpm.js';
import type { SimNetwork } from './sim-network.js';

export const monitorNode = 'monitor';

export interface MoveRecord {
  move: SlotMove;
  startUs: number;
  doneUs: number | null;
}

/**
 * The M-node in the simulator: the pure reconfiguration step function, with its outputs performed
 * as simulated messages to KN threads and as a DPM-side write of the new epoch and slot owners. The
 * published slot map (`slotMap`, read by clients) changes in place once the epoch is persisted.
 * A step that fails (the DPM was down, a merge wait timed out) is retried after `retryUs`.
 */
export class SimMonitor {
  readonly moves: MoveRecord[] = [];
  private state: ReconfigState;
  private readonly records = new Map<number, MoveRecord>();

  constructor(
    private readonly sim: Simulation,
    private readonly network: SimNetwork,
    private readonly dpm: SimDpm,
    private readonly threads: readonly KnThread[],
    private readonly slotMap: Uint16Array,
    private readonly retryUs: number,
  ) {
    this.state = initialReconfigState(1);
  }

  get busy(): boolean {
    return this.state.active !== null || this.state.queue.length > 0;
  }

  move(move: SlotMove): void {
    this.feed({ type: 'move', move });
  }

  private feed(input: ReconfigInput): void {
    const { state, outputs } = reconfigStep(this.state, input);
    this.state = state;
    for (const output of outputs) this.perform(output);
  }

  private perform(output: ReconfigOutput): void {
    this.sim.mix(`monitor:${output.type}:${output.moveId}`);
    switch (output.type) {
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
          () => this.feed({ type: 'released', moveId: output.moveId }),
        );
        return;
      }
      case 'persist':
        this.persist(output);
        return;
      case 'acquire':
        this.ask(
          output.rank,
          (t) => t.acquireSlots(output.slots, output.epoch),
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

  /** Sends a request to KN thread `rank`, and its completion back; retries when it fails. */
  private ask(rank: number, step: (t: KnThread) => Promise<void>, done: () => void): void {
    const thread = this.threads[rank];
    if (thread === undefined) return;
    this.network.send(monitorNode, `kn${rank}`, () => {
      step(thread).then(
        () => this.network.send(`kn${rank}`, monitorNode, done),
        () => this.sim.schedule(this.retryUs, 'monitor-retry', () => this.ask(rank, step, done)),
      );
    });
  }

  /** Writes the new epoch and owners into the DPM's cluster metadata, then publishes the map. */
  private persist(output: Extract<ReconfigOutput, { type: 'persist' }>): void {
    this.network.send(monitorNode, 'dpm', () => {
      if (!this.dpm.up) {
        this.sim.schedule(this.retryUs, 'monitor-retry', () => this.persist(output));
        return;
      }
      const { view, geometry } = this.dpm.region;
      const map = geometry.metadataOffset + Metadata.slotMap;
      for (const slot of output.slots) view.setUint16(map + slot * 2, output.owner, true);
      view.setUint32(geometry.metadataOffset + Metadata.epoch, output.epoch, true);
      this.network.send('dpm', monitorNode, () => {
        for (const slot of output.slots) this.slotMap[slot] = output.owner;
        this.feed({ type: 'persisted', moveId: output.moveId });
      });
    });
  }
}
