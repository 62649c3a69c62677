import { DinomoError, isDinomoError } from '../errors/index.js';
import { fabricAddon, type NativeFabricEndpoint } from '../util/native-addon.js';
import { newFabricCounters, type Fabric, type FabricCounters } from './fabric.js';
import type { FabricGrant } from './grant.js';

export interface NativeFabricOptions {
  /** The grant to connect with first. */
  grant: FabricGrant;
  /**
   * The newest grant for this thread, asked for on reconnect. Throws (or rejects with) FENCED when
   * the DPM fenced the thread and UNAVAILABLE while the DPM is unknown or down. A KN process asks
   * the DPM server over its control connection, so reconnect() is asynchronous then.
   */
  regrant: () => FabricGrant | Promise<FabricGrant>;
  /** The local address tcp endpoints bind; loopback unless the cluster spans hosts. */
  host?: string;
  /** The registered staging buffer; larger transfers are split into pieces of this size. */
  bounceBytes?: number;
  /** How long one operation may take before the endpoint counts as broken. */
  timeoutMs?: number;
}

const defaultBounceBytes = 1 << 20;
const defaultTimeoutMs = 1000;

/**
 * The Fabric of a KN thread in its own process: one libfabric endpoint (native/src/fabric.cc), each
 * call one posted operation completed by spinning on the completion queue. Bounds are checked in the
 * addon before posting, since a bad remote access is not reported on these providers: it drops the
 * connection (tcp) or hangs the endpoint (shm).
 *
 * A failed or timed-out operation leaves the endpoint broken: that and every later call throw
 * UNAVAILABLE until reconnect(), which takes a fresh grant and a new endpoint. A write's completion
 * only means it was sent, so persist() is a flushing read on the same connection: it completes only
 * after the earlier writes were applied, and it fails when they were refused (a revoked key, a
 * rotated DPM endpoint). A fenced thread learns that it is fenced from reconnect (FENCED).
 */
export class NativeFabric implements Fabric {
  readonly counters: FabricCounters = newFabricCounters();
  private readonly endpoint: NativeFabricEndpoint;
  private readonly regrant: () => FabricGrant | Promise<FabricGrant>;
  private grantValue: FabricGrant;
  private lastWordWritten = 0;

  constructor(options: NativeFabricOptions) {
    const bounceBytes = options.bounceBytes ?? defaultBounceBytes;
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    if (!Number.isInteger(bounceBytes) || bounceBytes < 64 || bounceBytes % 8 !== 0) {
      throw new DinomoError('INVALID_OPTION', 'bounceBytes must be a multiple of 8, at least 64');
    }
    if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
      throw new DinomoError('INVALID_OPTION', 'timeoutMs must be a positive integer');
    }
    const addon = fabricAddon();
    this.grantValue = options.grant;
    this.regrant = options.regrant;
    this.endpoint = callNative(
      () =>
        new addon.FabricEndpoint(
          options.grant.provider,
          options.host ?? '127.0.0.1',
          bounceBytes,
          timeoutMs,
        ),
    );
    this.connect(options.grant);
  }

  get regionBytes(): number {
    return this.grantValue.regionBytes;
  }

  /** The grant this endpoint is connected with. */
  get grant(): FabricGrant {
    return this.grantValue;
  }

  read(offset: number, length: number, dst: Uint8Array, dstOffset = 0): void {
    try {
      this.endpoint.read(offset, length, dst, dstOffset);
    } catch (err) {
      throw fabricError(err);
    }
    this.counters.rts++;
    this.counters.reads++;
    this.counters.bytesRead += length;
  }

  write(offset: number, src: Uint8Array, srcOffset = 0, length = src.length - srcOffset): void {
    try {
      this.endpoint.write(offset, src, srcOffset, length);
    } catch (err) {
      throw fabricError(err);
    }
    this.lastWordWritten = (offset + length - 1) & ~7;
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += length;
  }

  read64(offset: number): bigint {
    let value: bigint;
    try {
      value = this.endpoint.read64(offset);
    } catch (err) {
      throw fabricError(err);
    }
    this.counters.rts++;
    this.counters.reads++;
    this.counters.bytesRead += 8;
    return value;
  }

  write64(offset: number, value: bigint): void {
    try {
      this.endpoint.write64(offset, value);
    } catch (err) {
      throw fabricError(err);
    }
    this.lastWordWritten = offset;
    this.counters.rts++;
    this.counters.writes++;
    this.counters.bytesWritten += 8;
  }

  cas64(offset: number, expected: bigint, desired: bigint): bigint {
    let previous: bigint;
    try {
      previous = this.endpoint.cas64(offset, expected, desired);
    } catch (err) {
      throw fabricError(err);
    }
    this.counters.rts++;
    this.counters.atomics++;
    return previous;
  }

  faa64(offset: number, delta: bigint): bigint {
    let previous: bigint;
    try {
      previous = this.endpoint.faa64(offset, delta);
    } catch (err) {
      throw fabricError(err);
    }
    this.counters.rts++;
    this.counters.atomics++;
    return previous;
  }

  /** A flushing read of the last word written: one RT (see the class comment). */
  persist(): void {
    try {
      this.endpoint.read64(this.lastWordWritten);
    } catch (err) {
      throw fabricError(err);
    }
    this.counters.rts++;
    this.counters.persists++;
  }

  /**
   * Takes the newest grant and opens a new endpoint with it, then proves the DPM answers with one
   * read. Throws FENCED (from the grant) or UNAVAILABLE; the fabric stays broken then.
   */
  reconnect(): void | Promise<void> {
    const grant = this.regrant();
    if (grant instanceof Promise) return grant.then((fresh) => this.reconnectWith(fresh));
    this.reconnectWith(grant);
  }

  private reconnectWith(grant: FabricGrant): void {
    callNative(() => this.endpoint.reset());
    this.connect(grant);
    this.read64(0);
  }

  close(): void {
    this.endpoint.close();
  }

  /**
   * Runs `count` operations of one kind through this endpoint in a C loop, with no JavaScript between
   * them, and returns the nanoseconds they took: the baseline the fabric benchmark sets the
   * TypeScript calls against. Not counted in the counters.
   */
  nativeLoop(
    op: 'read' | 'write' | 'cas' | 'faa',
    offset: number,
    length: number,
    count: number,
  ): number {
    return callNative(() => this.endpoint.bench(op, offset, length, count));
  }

  private connect(grant: FabricGrant): void {
    if (grant.provider !== this.grantValue.provider) {
      throw new DinomoError(
        'INVALID_OPTION',
        `the grant is for provider ${grant.provider}, this endpoint uses ${this.grantValue.provider}`,
      );
    }
    callNative(() =>
      this.endpoint.connect(grant.address, grant.key, grant.base, grant.regionBytes),
    );
    this.grantValue = grant;
    this.lastWordWritten = 0;
  }
}

/**
 * Runs one addon call, turning its FABRIC_* error codes into DinomoErrors. For setup calls only: the
 * per-operation methods catch inline, so that an operation allocates no closure.
 */
export function callNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw fabricError(err);
  }
}

function fabricError(err: unknown): DinomoError {
  if (isDinomoError(err)) return err;
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'FABRIC_BOUNDS':
      return new DinomoError('CORRUPT', `fabric: ${message}`);
    case 'FABRIC_ARGS':
    case 'FABRIC_SETUP':
      return new DinomoError('INVALID_OPTION', `fabric: ${message}`);
    case 'FABRIC_BROKEN':
    case 'FABRIC_TIMEOUT':
    case 'FABRIC_IO':
      return new DinomoError('UNAVAILABLE', `fabric: ${message}`);
    default:
      return new DinomoError('INTERNAL', `fabric: ${message}`);
  }
}
