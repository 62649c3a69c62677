import type { Clock, TimerHandle } from './clock.js';

/**
 * The real clock: process.hrtime for time, setImmediate for sub-millisecond timers and setTimeout
 * otherwise. Node's setTimeout has a 1 ms floor, which is too coarse for a 200 µs group-commit
 * window; setImmediate runs after pending I/O, so a short timer still lets the messages that are
 * already queued join the batch.
 */
export class SystemClock implements Clock {
  nowUs(): number {
    return Number(process.hrtime.bigint() / 1000n);
  }

  setTimer(delayUs: number, callback: () => void): TimerHandle {
    if (delayUs < 1000) {
      const immediate = setImmediate(callback);
      return { cancel: () => clearImmediate(immediate) };
    }
    const timeout = setTimeout(callback, Math.round(delayUs / 1000));
    return { cancel: () => clearTimeout(timeout) };
  }
}

export const systemClock: Clock = new SystemClock();
