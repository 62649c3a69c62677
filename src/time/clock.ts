/**
 * Injected time. Protocol code (src/dpm, src/kn, src/monitor, src/routing) receives a Clock and never
 * touches Date.now, performance.now or timers itself, so the deterministic simulator can run the same
 * code on virtual time.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Monotonic time in microseconds (not wall-clock time; the origin is arbitrary). */
  nowUs(): number;
  /** Run `callback` once, no earlier than `delayUs` from now. */
  setTimer(delayUs: number, callback: () => void): TimerHandle;
}
