import type { Clock, TimerHandle } from '../time/index.js';
import type { Simulation } from './event-loop.js';

/**
 * The process a simulated KN thread runs in, so that it can fail or stall as a whole. Everything that
 * makes the thread run (its timers, messages delivered to it, answers to its requests) goes through
 * `run`: while the host is paused those callbacks wait and then run in their original order (a GC
 * pause or a stopped VM, after which the thread finds that time moved on), and once the host crashed
 * they never run (a killed process).
 */
export class SimHost {
  private state: 'up' | 'paused' | 'crashed' = 'up';
  private deferred: Array<() => void> = [];
  private draining = false;
  readonly clock: Clock;

  constructor(private readonly sim: Simulation) {
    this.clock = {
      nowUs: () => sim.nowUs(),
      setTimer: (delayUs: number, callback: () => void): TimerHandle =>
        sim.setTimer(delayUs, () => this.run(callback)),
    };
  }

  get crashed(): boolean {
    return this.state === 'crashed';
  }

  get paused(): boolean {
    return this.state === 'paused';
  }

  run(callback: () => void): void {
    if (this.state === 'crashed') return;
    // While earlier callbacks wait (paused, or still draining after a resume), keep their order.
    if (this.state === 'paused' || this.deferred.length > 0) this.deferred.push(callback);
    else callback();
  }

  pause(): void {
    if (this.state === 'up') this.state = 'paused';
  }

  /**
   * Ends a pause: the callbacks that arrived meanwhile run now, in order, each as its own event (as
   * a process's event loop would take them, with promise jobs in between).
   */
  resume(): void {
    if (this.state !== 'paused') return;
    this.state = 'up';
    this.drainOne();
  }

  private drainOne(): void {
    if (this.deferred.length === 0 || this.draining) return;
    this.draining = true;
    this.sim.schedule(0, 'resume', () => {
      this.draining = false;
      if (this.state !== 'up') return;
      const callback = this.deferred.shift();
      callback?.();
      this.drainOne();
    });
  }

  crash(): void {
    this.state = 'crashed';
    this.deferred = [];
  }
}
