import { errorCodeFromWire, errorCodeToWire, type ErrorCode } from '../errors/index.js';
import { assert } from '../util/assert.js';

/**
 * The data-path wire format between clients and a KN thread: one message carries a whole batch, so a
 * busy client pays one postMessage per KN thread per tick, never one per operation.
 *
 * Request batch:   u32 count, then per request:
 *   u8 op | u32 requestId | u16 keyBytes | u32 valueBytes | key | value
 * Response batch:  u32 count, then per response:
 *   u32 requestId | u8 status | u32 payloadBytes | payload
 *     status ok: payload = the value (get) or empty; notFound: empty (get: absent, delete: did not exist);
 *     error: payload = u16 error code (errors/codes.ts order) + UTF-8 message.
 */
export const WireOp = { get: 1, put: 2, delete: 3 } as const;
export type WireOpCode = (typeof WireOp)[keyof typeof WireOp];
export const WireStatus = { ok: 0, notFound: 1, error: 2 } as const;

export const requestHeaderBytes = 11;
export const responseHeaderBytes = 9;

/** A growable byte buffer that is reused between batches (no allocation per request). */
export class BatchWriter {
  private bytes: Uint8Array;
  private view: DataView;
  private length = 4;
  private entries = 0;

  constructor(initialBytes = 64 * 1024) {
    this.bytes = new Uint8Array(initialBytes);
    this.view = new DataView(this.bytes.buffer);
  }

  get count(): number {
    return this.entries;
  }

  get byteLength(): number {
    return this.length;
  }

  /** Appends a request; the key and value are written by the callbacks' owner through `reserve`. */
  addRequest(op: WireOpCode, requestId: number, key: Uint8Array, value: Uint8Array | null): void {
    const valueBytes = value === null ? 0 : value.length;
    const at = this.reserve(requestHeaderBytes + key.length + valueBytes);
    this.view.setUint8(at, op);
    this.view.setUint32(at + 1, requestId, true);
    this.view.setUint16(at + 5, key.length, true);
    this.view.setUint32(at + 7, valueBytes, true);
    this.bytes.set(key, at + requestHeaderBytes);
    if (value !== null) this.bytes.set(value, at + requestHeaderBytes + key.length);
    this.entries++;
  }

  addResponse(requestId: number, status: number, payload: Uint8Array | null): void {
    const payloadBytes = payload === null ? 0 : payload.length;
    const at = this.reserve(responseHeaderBytes + payloadBytes);
    this.view.setUint32(at, requestId, true);
    this.view.setUint8(at + 4, status);
    this.view.setUint32(at + 5, payloadBytes, true);
    if (payload !== null) this.bytes.set(payload, at + responseHeaderBytes);
    this.entries++;
  }

  addError(requestId: number, code: ErrorCode, message: string): void {
    const text = Buffer.from(message, 'utf8');
    const at = this.reserve(responseHeaderBytes + 2 + text.length);
    this.view.setUint32(at, requestId, true);
    this.view.setUint8(at + 4, WireStatus.error);
    this.view.setUint32(at + 5, 2 + text.length, true);
    this.view.setUint16(at + responseHeaderBytes, errorCodeToWire(code), true);
    this.bytes.set(text, at + responseHeaderBytes + 2);
    this.entries++;
  }

  /** Returns an exact-size copy of the batch (safe to post) and resets the writer for reuse. */
  take(): Uint8Array {
    this.view.setUint32(0, this.entries, true);
    const out = this.bytes.slice(0, this.length);
    this.length = 4;
    this.entries = 0;
    return out;
  }

  private reserve(bytes: number): number {
    const need = this.length + bytes;
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length = need;
    return at;
  }
}

/** A cursor over a request batch; fields of the current request are exposed as views (no copies). */
export class RequestReader {
  op = 0;
  requestId = 0;
  key: Uint8Array = new Uint8Array(0);
  value: Uint8Array = new Uint8Array(0);
  private bytes: Uint8Array = new Uint8Array(0);
  private view: DataView = new DataView(new ArrayBuffer(0));
  private at = 0;
  private remaining = 0;

  reset(batch: Uint8Array): void {
    this.bytes = batch;
    this.view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    this.remaining = batch.length >= 4 ? this.view.getUint32(0, true) : 0;
    this.at = 4;
  }

  next(): boolean {
    if (this.remaining === 0) return false;
    assert(this.at + requestHeaderBytes <= this.bytes.length, 'request header inside the batch');
    this.op = this.view.getUint8(this.at);
    this.requestId = this.view.getUint32(this.at + 1, true);
    const keyBytes = this.view.getUint16(this.at + 5, true);
    const valueBytes = this.view.getUint32(this.at + 7, true);
    const keyStart = this.at + requestHeaderBytes;
    this.key = this.bytes.subarray(keyStart, keyStart + keyBytes);
    this.value = this.bytes.subarray(keyStart + keyBytes, keyStart + keyBytes + valueBytes);
    this.at = keyStart + keyBytes + valueBytes;
    assert(this.at <= this.bytes.length, 'request body inside the batch');
    this.remaining--;
    return true;
  }
}

export interface ResponseVisitor {
  (
    requestId: number,
    status: number,
    payload: Uint8Array,
    errorCode: ErrorCode | null,
    message: string,
  ): void;
}

/**
 * Walks a response batch. Payloads are views into `batch` (which the receiver owns: postMessage
 * delivered a fresh copy), so a value handed to the user needs no further copy.
 */
export function readResponses(batch: Uint8Array, visit: ResponseVisitor): number {
  const view = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
  const count = view.getUint32(0, true);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const requestId = view.getUint32(at, true);
    const status = view.getUint8(at + 4);
    const payloadBytes = view.getUint32(at + 5, true);
    const start = at + responseHeaderBytes;
    const payload = batch.subarray(start, start + payloadBytes);
    if (status === WireStatus.error) {
      const code = errorCodeFromWire(view.getUint16(start, true));
      const message = Buffer.from(
        batch.buffer,
        batch.byteOffset + start + 2,
        payloadBytes - 2,
      ).toString('utf8');
      visit(requestId, status, payload, code, message);
    } else {
      visit(requestId, status, payload, null, '');
    }
    at = start + payloadBytes;
  }
  return count;
}
