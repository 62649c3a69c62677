/**
 * Locks on Int32 words inside the region, shared by every DPM-side thread (the manager and the merge
 * pool). The index writer lock is a futex-style mutex: 0 = free, 1 = held, 2 = held and someone may
 * be waiting. Waiters sleep in Atomics.wait instead of spinning, so a long merge batch does not burn a
 * core in every other merge thread. KN threads never take these locks.
 */

const spinTries = 64;

/** Acquires the mutex at `i32[index]`; blocks the calling thread until it is free. */
export function lockMutex(i32: Int32Array, index: number): void {
  let state = Atomics.compareExchange(i32, index, 0, 1);
  if (state === 0) return;
  for (let i = 0; i < spinTries && state !== 0; i++) {
    state = Atomics.compareExchange(i32, index, 0, 1);
    if (state === 0) return;
  }
  // Slow path: mark the word as contended (2) and sleep until an unlock notifies us.
  if (state !== 2) state = Atomics.exchange(i32, index, 2);
  while (state !== 0) {
    Atomics.wait(i32, index, 2);
    state = Atomics.exchange(i32, index, 2);
  }
}

/** Releases the mutex at `i32[index]`, waking one waiter if the word says there may be one. */
export function unlockMutex(i32: Int32Array, index: number): void {
  if (Atomics.exchange(i32, index, 0) === 2) Atomics.notify(i32, index, 1);
}

/** Takes a try-only lock word (0 = free, 1 = held); false when someone else holds it. */
export function tryLockWord(i32: Int32Array, index: number): boolean {
  return Atomics.compareExchange(i32, index, 0, 1) === 0;
}

export function unlockWord(i32: Int32Array, index: number): void {
  Atomics.store(i32, index, 0);
}
