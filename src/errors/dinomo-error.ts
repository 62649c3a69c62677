import { ErrorCodes, type ErrorCode } from './codes.js';

const brand = Symbol.for('dinomo.DinomoError');

export type ErrorOrigin = 'local' | 'remote' | 'native';

/**
 * The only error type dinomo throws on purpose. `code` is stable (see codes.ts); `retriable` says whether
 * the same request may succeed later. A `Symbol.for` brand makes `isDinomoError` work across worker
 * realms, where `instanceof` does not.
 */
export class DinomoError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly origin: ErrorOrigin;
  readonly [brand] = true;

  constructor(code: ErrorCode, message: string, origin: ErrorOrigin = 'local') {
    super(`${code}: ${message} (${ErrorCodes[code].hint})`);
    this.name = 'DinomoError';
    this.code = code;
    this.retriable = ErrorCodes[code].retriable;
    this.origin = origin;
  }
}

export function isDinomoError(value: unknown): value is DinomoError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[brand] === true
  );
}

/** Errors cross threads as data: this is the envelope, and `fromWireError` turns it back at the edge. */
export interface WireError {
  code: ErrorCode;
  message: string;
}

export function toWireError(err: unknown): WireError {
  if (isDinomoError(err)) return { code: err.code, message: err.message };
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  return { code: 'INTERNAL', message };
}

export function fromWireError(wire: WireError): DinomoError {
  const err = new DinomoError(wire.code, wire.message, 'remote');
  // The remote message already carries the code and hint; do not repeat them.
  err.message = wire.message;
  return err;
}
