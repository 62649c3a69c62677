/**
 * Assertions are for programmer errors only: a broken invariant means a bug, so nothing catches
 * AssertionError. Operating errors (bad input, full region, timeouts) are DinomoErrors instead.
 */
export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
