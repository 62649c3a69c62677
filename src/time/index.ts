/** Time for every component: the Clock interface and the real implementation. */
export type { Clock, TimerHandle } from './clock.js';
export { SystemClock, systemClock } from './system-clock.js';
export { afterMicrotasks } from './macrotask.js';
