import type { Clock, TimerHandle } from './clock.js';

/**
 * The real clock: performance.now for time, setImmediate for sub-millisecond timers and setTimeout
 * otherwise. performance.now is monotonic and cheap (no BigInt), but each thread counts from its
 * own start: readings must not cross threads. Nothing does: a KN thread's lease is measured on its
 * own clock from the moment it sent the heartbeat, the M-node's on the main thread's. Node's setTimeout has a 1 ms floor, which is too coarse for a 200 µs group-commit
 * window; setImmediate runs after pending I/O, so a short timer still lets the messages that are
 * already queued join the batch.
 */
export class SystemClock implements Clock {
  nowUs(): number {
    return Math.floor(performance.now() * 1000);
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
