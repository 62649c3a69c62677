import type { Simulation } from './event-loop.js';

export interface NetworkOptions {
  /** One-way message delay range, in virtual microseconds. */
  minDelayUs: number;
  maxDelayUs: number;
  /**
   * Delivery choices from the scenario: each message consumes one and takes delay
   * min + (choice mod (range + 1)). Shrinking pushes them to 0 (the shortest delay, so FIFO across
   * channels too). When they run out, the simulation's seeded random decides.
   */
  choices?: readonly number[];
}

/** A window in which messages to or from `node` take `extraUs` longer (a slow link or a stall). */
export interface DelayWindow {
  node: string;
  fromUs: number;
  toUs: number;
  extraUs: number;
}

/** A window in which every message between `a` and `b` (either way) is lost: a partition. */
export interface PartitionWindow {
  a: string;
  b: string;
  fromUs: number;
  toUs: number;
}

/**
 * Simulated message passing between named nodes. Each (from, to) channel is FIFO, as a MessagePort
 * or a TCP connection is; channels are independent, so messages on different channels overtake each
 * other whenever their delays say so.
 */
export class SimNetwork {
  private readonly sim: Simulation;
  private readonly options: NetworkOptions;
  private readonly lastDeliveryUs = new Map<string, number>();
  private readonly windows: DelayWindow[] = [];
  private readonly partitions: PartitionWindow[] = [];
  private dropped = 0;
  private choiceAt = 0;
  private delivered = 0;
  private delayedByFault = 0;

  constructor(sim: Simulation, options: NetworkOptions) {
    this.sim = sim;
    this.options = options;
  }

  addDelayWindow(window: DelayWindow): void {
    this.windows.push(window);
  }

  /** Cuts the link between two nodes for a while (messages sent meanwhile are lost). */
  addPartition(window: PartitionWindow): void {
    this.partitions.push(window);
  }

  /** Sends a message from `from` to `to`; `deliver` runs at the receiver on arrival. */
  send(from: string, to: string, deliver: () => void): void {
    const channel = `${from}>${to}`;
    const now = this.sim.nowUs();
    if (this.partitioned(from, to, now)) {
      this.dropped++;
      return;
    }
    let atUs = now + this.pickDelay() + this.extraDelay(from, to, now);
    const last = this.lastDeliveryUs.get(channel) ?? 0;
    if (atUs < last) atUs = last;
    this.lastDeliveryUs.set(channel, atUs);
    this.sim.schedule(atUs - now, channel, () => {
      this.delivered++;
      deliver();
    });
  }

  get stats(): { delivered: number; delayedByFault: number; dropped: number } {
    return {
      delivered: this.delivered,
      delayedByFault: this.delayedByFault,
      dropped: this.dropped,
    };
  }

  private partitioned(from: string, to: string, now: number): boolean {
    return this.partitions.some(
      (p) =>
        now >= p.fromUs &&
        now < p.toUs &&
        ((p.a === from && p.b === to) || (p.a === to && p.b === from)),
    );
  }

  private pickDelay(): number {
    const { minDelayUs, maxDelayUs, choices } = this.options;
    const range = maxDelayUs - minDelayUs + 1;
    const choice = choices?.[this.choiceAt];
    if (choice !== undefined) {
      this.choiceAt++;
      return minDelayUs + (choice % range);
    }
    return minDelayUs + this.sim.random.int(range);
  }

  private extraDelay(from: string, to: string, now: number): number {
    let extra = 0;
    for (const w of this.windows) {
      if ((w.node === from || w.node === to) && now >= w.fromUs && now < w.toUs) extra += w.extraUs;
    }
    if (extra > 0) this.delayedByFault++;
    return extra;
  }
}
