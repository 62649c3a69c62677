import type { Clock, TimerHandle } from '../time/index.js';
import { afterMicrotasks } from '../time/index.js';
import { assert } from '../util/assert.js';
import { SeededRandom } from '../util/random.js';

interface SimEvent {
  atUs: number;
  seq: number;
  label: string;
  run: () => void;
  cancelled: boolean;
}

export interface RunLimits {
  /** Stop before the first event later than this virtual time. */
  untilUs: number;
  /** Stop after this many events (a runaway guard; exceeding it is reported, not hidden). */
  maxEvents: number;
}

/**
 * The deterministic simulator's core: one thread, a virtual clock, and a queue of events ordered by
 * (virtual time, insertion order). It is the Clock every simulated component receives, so KN threads,
 * the DPM manager and clients schedule timers on virtual time. After each event it lets every
 * microtask run (promise continuations of the event) before taking the next event, so the whole
 * run depends only on the seed and the scenario. Each event is folded into a trace hash; two runs
 * of the same scenario must produce the same hash (the determinism check).
 */
export class Simulation implements Clock {
  readonly random: SeededRandom;
  private readonly heap: SimEvent[] = [];
  private nowValueUs = 0;
  private seq = 0;
  private events = 0;
  private hash = 0x811c9dc5;

  constructor(seed: number) {
    this.random = new SeededRandom(seed);
  }

  nowUs(): number {
    return this.nowValueUs;
  }

  setTimer(delayUs: number, callback: () => void): TimerHandle {
    return this.schedule(delayUs, 'timer', callback);
  }

  /** Runs `run` `delayUs` from now (at least 0); `label` goes into the trace hash. */
  schedule(delayUs: number, label: string, run: () => void): TimerHandle {
    assert(Number.isFinite(delayUs), 'a finite delay');
    const event: SimEvent = {
      atUs: this.nowValueUs + Math.max(0, Math.round(delayUs)),
      seq: this.seq++,
      label,
      run,
      cancelled: false,
    };
    this.push(event);
    return {
      cancel: () => {
        event.cancelled = true;
      },
    };
  }

  /** A promise that resolves `delayUs` of virtual time from now. */
  sleep(delayUs: number): Promise<void> {
    return new Promise((resolve) => this.schedule(delayUs, 'sleep', resolve));
  }

  /** Events run so far. */
  get eventCount(): number {
    return this.events;
  }

  /** Folds a value into the trace hash (components add what they consider observable). */
  mix(text: string): void {
    let h = this.hash;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    this.hash = h;
  }

  get traceHash(): string {
    return `${this.hash.toString(16).padStart(8, '0')}:${this.events}:${this.nowValueUs}`;
  }

  /**
   * Runs events in order until `done()` holds (checked after each event), the queue is empty, or a
   * limit is reached. Returns why it stopped.
   */
  async run(
    limits: RunLimits,
    done: () => boolean = () => false,
  ): Promise<'done' | 'idle' | 'time' | 'events'> {
    await afterMicrotasks();
    for (;;) {
      if (done()) return 'done';
      const next = this.pop();
      if (next === undefined) return 'idle';
      if (next.atUs > limits.untilUs) {
        this.push(next);
        return 'time';
      }
      if (this.events >= limits.maxEvents) {
        this.push(next);
        return 'events';
      }
      this.nowValueUs = next.atUs;
      this.events++;
      this.mix(next.label);
      this.mix(String(next.atUs));
      next.run();
      await afterMicrotasks();
    }
  }

  private push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(event, heap[parent] as SimEvent)) break;
      heap[i] = heap[parent] as SimEvent;
      i = parent;
    }
    heap[i] = event;
  }

  private pop(): SimEvent | undefined {
    for (;;) {
      const top = this.popRaw();
      if (top === undefined || !top.cancelled) return top;
    }
  }

  private popRaw(): SimEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child =
        right < heap.length && before(heap[right] as SimEvent, heap[left] as SimEvent)
          ? right
          : left;
      if (!before(heap[child] as SimEvent, last)) break;
      heap[i] = heap[child] as SimEvent;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.atUs !== b.atUs ? a.atUs < b.atUs : a.seq < b.seq;
}
