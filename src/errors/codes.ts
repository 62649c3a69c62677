/**
 * The one error table. Every error that crosses a thread, a socket or the public API carries one of
 * these codes; callers match on `err.code`, never on the message. `docs/errors.md` lists them.
 * A code is stable once released: add new codes, never rename old ones.
 */
export const ErrorCodes = {
  INVALID_KEY: { retriable: false, hint: 'Keys are strings or Uint8Arrays of 1 to 1024 bytes.' },
  INVALID_VALUE: { retriable: false, hint: 'Values are strings or Uint8Arrays of at most 1 MiB.' },
  INVALID_OPTION: {
    retriable: false,
    hint: 'Fix the option named in the message; see docs/options.md.',
  },
  OVERLOADED: {
    retriable: true,
    hint: 'A bounded queue is full; retry with backoff or lower the load.',
  },
  TIMEOUT: {
    retriable: true,
    hint: 'No answer in time; the operation may or may not have taken effect.',
  },
  CLOSED: { retriable: false, hint: 'The cluster or client was stopped; start a new one.' },
  NOT_SUPPORTED: { retriable: false, hint: 'This feature is not available in this build yet.' },
  MOVED: {
    retriable: true,
    hint: 'The slot moved to another KN thread; refresh the slot map and retry.',
  },
  TRYAGAIN: { retriable: true, hint: 'The slot is being handed over; retry shortly.' },
  REGION_FULL: {
    retriable: true,
    hint: 'The DPM region has no free log block; raise regionBytes or wait for cleaning.',
  },
  FENCED: {
    retriable: false,
    hint: 'This KN thread was fenced at the DPM; it must rejoin with a new identity.',
  },
  UNAVAILABLE: {
    retriable: true,
    hint: 'The DPM is unreachable or restarting; a write may or may not have taken effect. Retry.',
  },
  CORRUPT: { retriable: false, hint: 'A DPM structure failed its checksum or bounds check.' },
  WORKER_FAILED: {
    retriable: false,
    hint: 'A worker thread died; see the log and restart the cluster.',
  },
  INTERNAL: { retriable: false, hint: 'A bug in dinomo: please report it with the message.' },
  // New codes go last: the position of a code is its wire number (errorCodeToWire).
  UNAUTHORIZED: {
    retriable: false,
    hint: 'The peer did not prove it holds the cluster secret; give both sides the same secret.',
  },
} as const satisfies Record<string, { retriable: boolean; hint: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** Codes in a fixed order, so a code can cross a binary channel as a small integer. */
export const errorCodeList: readonly ErrorCode[] = Object.keys(ErrorCodes) as ErrorCode[];

export function errorCodeToWire(code: ErrorCode): number {
  return errorCodeList.indexOf(code) + 1;
}

export function errorCodeFromWire(wire: number): ErrorCode {
  return errorCodeList[wire - 1] ?? 'INTERNAL';
}
