/**
 * Resolves after every pending microtask (promise reactions, process.nextTick) has run: setImmediate
 * callbacks run only once the microtask queue is empty. The simulator awaits this after each event,
 * so all the synchronous and promise-driven consequences of one event happen before the next event.
 */
export function afterMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
