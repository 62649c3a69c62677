import { keyBytesMax, valueBytesMax } from '../config/limits.js';
import { DinomoError } from '../errors/index.js';
import {
  BatchWriter,
  requestHeaderBytes,
  responseHeaderBytes,
  WireOp,
  WireStatus,
} from './wire.js';

/**
 * Many client connections share one KN thread, and each connection numbers its requests itself, so
 * two connections may use the same request id at once. The mux gives every admitted request a
 * fresh id that is unique among the requests in flight at the KN thread, remembers which connection
 * and which original id it stands for, and puts the original ids back when the answers come.
 *
 *   const mux = new ClientMux({ maxInflight: 4096 });
 *   const rewritten = mux.admit(connection, batch);  // null: answer overloadedResponses(batch, ...)
 *   thread.enqueue(rewritten);
 *   // later, with the thread's output:
 *   mux.route(responses, (connection, batch) => writeTo(connection, batch));
 *
 * The mux does no I/O and owns no timers. It also holds the checks of batches that arrive from the
 * network (a KN thread trusts its input) and the splitting of batches that are too big for a frame.
 */

const u32Max = 0xffff_ffff;
/** The connection recorded for an id whose connection was forgotten: its answer is dropped. */
const orphan = -1;
/** Sinks above this size are not kept for reuse, so one huge answer does not pin its buffer. */
const sinkKeepBytesMax = 1024 * 1024;
const sinkPoolMax = 64;

export interface ClientMuxOptions {
  /** Requests in flight at the KN thread through this mux, over all connections. */
  readonly maxInflight: number;
  /**
   * The largest mux id (default and at most 2^32 - 1); ids run from 1 to it and wrap around. Tests
   * make it small to reach the wrap-around; it must be at least maxInflight.
   */
  readonly idMax?: number;
}

type BatchKind = 'request' | 'response';

function malformed(kind: BatchKind, what: string): DinomoError {
  return new DinomoError(
    'INVALID_OPTION',
    `malformed ${kind} batch: ${what}; build batches with BatchWriter (src/kn/wire.ts)`,
  );
}

function viewOf(batch: Uint8Array): DataView {
  return new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
}

/** The count field, checked against the smallest size that many records could take. */
function checkedCount(view: DataView, kind: BatchKind): number {
  if (view.byteLength < 4) throw malformed(kind, `${view.byteLength} bytes, no count`);
  const count = view.getUint32(0, true);
  const headerBytes = kind === 'request' ? requestHeaderBytes : responseHeaderBytes;
  if (4 + count * headerBytes > view.byteLength) {
    throw malformed(kind, `${count} records cannot fit in ${view.byteLength} bytes`);
  }
  return count;
}

/** Where the request at `at` ends; the batch is known to be well formed. */
function requestEnd(view: DataView, at: number): number {
  return at + requestHeaderBytes + view.getUint16(at + 5, true) + view.getUint32(at + 7, true);
}

/** Where the response at `at` ends; the batch is known to be well formed. */
function responseEnd(view: DataView, at: number): number {
  return at + responseHeaderBytes + view.getUint32(at + 5, true);
}

/** Checks the request at `at` (the `index`th) and returns where it ends. */
function checkedRequestEnd(view: DataView, at: number, index: number): number {
  if (at + requestHeaderBytes > view.byteLength) {
    throw malformed('request', `request ${index} is cut off in its header`);
  }
  const op = view.getUint8(at);
  if (op !== WireOp.get && op !== WireOp.put && op !== WireOp.delete) {
    throw malformed('request', `request ${index} has the unknown op ${op}`);
  }
  const keyBytes = view.getUint16(at + 5, true);
  if (keyBytes === 0 || keyBytes > keyBytesMax) {
    throw malformed('request', `request ${index} has a key of ${keyBytes} bytes`);
  }
  const valueBytes = view.getUint32(at + 7, true);
  if (valueBytes > valueBytesMax) {
    throw malformed('request', `request ${index} has a value of ${valueBytes} bytes`);
  }
  const end = requestEnd(view, at);
  if (end > view.byteLength) throw malformed('request', `request ${index} ends past the batch`);
  return end;
}

/** Checks the response at `at` (the `index`th) and returns where it ends. */
function checkedResponseEnd(view: DataView, at: number, index: number): number {
  if (at + responseHeaderBytes > view.byteLength) {
    throw malformed('response', `response ${index} is cut off in its header`);
  }
  const status = view.getUint8(at + 4);
  const payloadBytes = view.getUint32(at + 5, true);
  if (status !== WireStatus.ok && status !== WireStatus.notFound && status !== WireStatus.error) {
    throw malformed('response', `response ${index} has the unknown status ${status}`);
  }
  if (status === WireStatus.error && payloadBytes < 2) {
    throw malformed('response', `error response ${index} has no error code`);
  }
  const end = responseEnd(view, at);
  if (end > view.byteLength) throw malformed('response', `response ${index} ends past the batch`);
  return end;
}

function checkBatch(batch: Uint8Array, kind: BatchKind): number {
  const view = viewOf(batch);
  const count = checkedCount(view, kind);
  const end = kind === 'request' ? checkedRequestEnd : checkedResponseEnd;
  let at = 4;
  for (let i = 0; i < count; i++) at = end(view, at, i);
  if (at !== batch.length) {
    throw malformed(kind, `${batch.length - at} bytes follow the last of ${count} records`);
  }
  return count;
}

/**
 * Checks that a request batch from the network is well formed: every record inside the buffer, no
 * bytes after the last, known ops, and keys and values within the limits of the data model (the
 * KN thread relies on them). Returns the count; throws INVALID_OPTION otherwise.
 */
export function checkRequestBatch(batch: Uint8Array): number {
  return checkBatch(batch, 'request');
}

/** Checks that a response batch from the network is well formed, as checkRequestBatch does. */
export function checkResponseBatch(batch: Uint8Array): number {
  return checkBatch(batch, 'response');
}

function copyRecords(batch: Uint8Array, from: number, to: number, count: number): Uint8Array {
  const out = new Uint8Array(4 + to - from);
  viewOf(out).setUint32(0, count, true);
  out.set(batch.subarray(from, to), 4);
  return out;
}

/**
 * Splits a well-formed batch into batches of at most `limit` bytes each, so that each fits in one
 * frame; records are independent, so the receiver handles the parts as it would the whole. A batch
 * that already fits is returned as is. A single record larger than the limit gets a part of its
 * own, which the frame encoder then refuses.
 */
export function splitBatch(batch: Uint8Array, kind: BatchKind, limit: number): Uint8Array[] {
  if (batch.length <= limit) return [batch];
  const view = viewOf(batch);
  const end = kind === 'request' ? requestEnd : responseEnd;
  const count = view.getUint32(0, true);
  const parts: Uint8Array[] = [];
  let start = 4;
  let at = 4;
  let inPart = 0;
  for (let i = 0; i < count; i++) {
    const next = end(view, at);
    if (inPart > 0 && 4 + next - start > limit) {
      parts.push(copyRecords(batch, start, at, inPart));
      start = at;
      inPart = 0;
    }
    inPart++;
    at = next;
  }
  if (inPart > 0) parts.push(copyRecords(batch, start, at, inPart));
  return parts;
}

/**
 * A response batch that refuses every request of `batch` (not rewritten by admit, so that the ids
 * are the client's own) with OVERLOADED and `message`. Throws INVALID_OPTION for a malformed batch.
 */
export function overloadedResponses(batch: Uint8Array, message: string): Uint8Array {
  const count = checkRequestBatch(batch);
  const view = viewOf(batch);
  const writer = new BatchWriter(256);
  let at = 4;
  for (let i = 0; i < count; i++) {
    writer.addError(view.getUint32(at + 1, true), 'OVERLOADED', message);
    at = requestEnd(view, at);
  }
  return writer.take();
}

/** Collects the raw response records for one connection during one route call. */
class ResponseSink {
  private bytes = new Uint8Array(256);
  private length = 4;
  private count = 0;

  get byteCapacity(): number {
    return this.bytes.length;
  }

  /** Copies the record `source[from, to)` and sets its request id to `requestId`. */
  append(source: Uint8Array, from: number, to: number, requestId: number): void {
    const need = this.length + to - from;
    if (need > this.bytes.length) {
      const grown = new Uint8Array(Math.max(need, this.bytes.length * 2));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    this.bytes.set(source.subarray(from, to), this.length);
    viewOf(this.bytes).setUint32(this.length, requestId, true);
    this.length = need;
    this.count++;
  }

  /** An exact-size copy of the collected batch; the sink is empty afterwards. */
  take(): Uint8Array {
    viewOf(this.bytes).setUint32(0, this.count, true);
    const out = this.bytes.slice(0, this.length);
    this.reset();
    return out;
  }

  reset(): void {
    this.length = 4;
    this.count = 0;
  }
}

/** See the top of this file. */
export class ClientMux {
  private readonly maxInflight: number;
  /** Mux id → the connection it came from, or `orphan` once that connection is forgotten. */
  private readonly connectionOf = new Map<number, number>();
  /** Mux id → the id the connection gave the request. */
  private readonly originalIdOf = new Map<number, number>();
  private readonly sinks = new Map<number, ResponseSink>();
  private readonly spareSinks: ResponseSink[] = [];
  private readonly idMax: number;
  private nextId = 1;

  constructor(options: ClientMuxOptions) {
    const { maxInflight, idMax = u32Max } = options;
    if (!Number.isInteger(maxInflight) || maxInflight < 1 || maxInflight > 2 ** 24) {
      throw new DinomoError(
        'INVALID_OPTION',
        `maxInflight must be an integer from 1 to ${2 ** 24}; got ${String(maxInflight)}`,
      );
    }
    if (!Number.isInteger(idMax) || idMax < maxInflight || idMax > u32Max) {
      throw new DinomoError(
        'INVALID_OPTION',
        `idMax must be an integer from maxInflight to ${u32Max}; got ${String(idMax)}`,
      );
    }
    this.maxInflight = maxInflight;
    this.idMax = idMax;
  }

  /** Requests admitted and not answered yet, including those of forgotten connections. */
  get inflight(): number {
    return this.connectionOf.size;
  }

  /**
   * Rewrites the request ids of `batch` in place to mux ids and returns it, or returns null and
   * changes nothing if the batch would take the mux past maxInflight (the caller then answers it
   * with overloadedResponses). `connection` is a non-negative integer the caller never reuses.
   * Throws INVALID_OPTION, again changing nothing, if the batch is malformed.
   */
  admit(connection: number, batch: Uint8Array): Uint8Array | null {
    if (!Number.isInteger(connection) || connection < 0) {
      throw new DinomoError(
        'INVALID_OPTION',
        `a connection is a non-negative integer; got ${String(connection)}`,
      );
    }
    const count = checkRequestBatch(batch);
    if (this.connectionOf.size + count > this.maxInflight) return null;
    const view = viewOf(batch);
    let at = 4;
    for (let i = 0; i < count; i++) {
      const id = this.freshId();
      this.connectionOf.set(id, connection);
      this.originalIdOf.set(id, view.getUint32(at + 1, true));
      view.setUint32(at + 1, id, true);
      at = requestEnd(view, at);
    }
    return batch;
  }

  /**
   * Splits one response batch of the KN thread by connection, with the original ids restored, and
   * calls `deliver` once per connection that has answers, in the order of their first answer.
   * Answers to forgotten connections, and to ids the mux does not know, are dropped.
   */
  route(responses: Uint8Array, deliver: (connection: number, batch: Uint8Array) => void): void {
    const view = viewOf(responses);
    const count = responses.length >= 4 ? view.getUint32(0, true) : 0;
    try {
      let at = 4;
      for (let i = 0; i < count; i++) {
        const end = responseEnd(view, at);
        this.routeOne(responses, view, at, end);
        at = end;
      }
      for (const [connection, sink] of this.sinks) deliver(connection, sink.take());
    } finally {
      this.releaseSinks();
    }
  }

  /**
   * Drops the connection's requests in flight: their answers will be dropped. Their mux ids stay
   * taken (and count as in flight) until the KN thread answers them, so that an id is never given
   * to a new request while the thread may still answer the old one.
   */
  forget(connection: number): void {
    for (const [id, owner] of this.connectionOf) {
      if (owner === connection) this.connectionOf.set(id, orphan);
    }
  }

  private freshId(): number {
    // Fewer than maxInflight <= idMax ids are taken when this runs, so the loop finds a free id
    // within maxInflight steps (and at once until the ids first wrap around).
    while (this.connectionOf.has(this.nextId)) this.advance();
    const id = this.nextId;
    this.advance();
    return id;
  }

  private advance(): void {
    this.nextId = this.nextId === this.idMax ? 1 : this.nextId + 1;
  }

  private routeOne(responses: Uint8Array, view: DataView, at: number, end: number): void {
    const muxId = view.getUint32(at, true);
    const connection = this.connectionOf.get(muxId);
    const original = this.originalIdOf.get(muxId);
    if (connection === undefined || original === undefined) return;
    this.connectionOf.delete(muxId);
    this.originalIdOf.delete(muxId);
    if (connection === orphan) return;
    this.sinkFor(connection).append(responses, at, end, original);
  }

  private sinkFor(connection: number): ResponseSink {
    let sink = this.sinks.get(connection);
    if (sink === undefined) {
      sink = this.spareSinks.pop() ?? new ResponseSink();
      this.sinks.set(connection, sink);
    }
    return sink;
  }

  private releaseSinks(): void {
    for (const sink of this.sinks.values()) {
      sink.reset();
      if (this.spareSinks.length < sinkPoolMax && sink.byteCapacity <= sinkKeepBytesMax) {
        this.spareSinks.push(sink);
      }
    }
    this.sinks.clear();
  }
}
