import { connect, type Socket } from 'node:net';
import { encodeFrame, FrameReader, maxFrameBytes } from '../actors/index.js';
import { checkResponseBatch, splitBatch } from '../kn/client-mux.js';
import type { Clock } from '../time/index.js';
import { KnChannel } from './kn-channel.js';

export interface TcpKnLinkOptions {
  readonly host: string;
  readonly port: number;
  /** The KN thread's rank, for messages. */
  readonly rank: number;
  readonly clock: Clock;
  readonly requestTimeoutMs: number;
  /** Requests in flight on this link at most; keep it at or below the server mux's maxInflight. */
  readonly inflightMax: number;
  /** Called once when the connection closes by itself (not after `close()`). */
  readonly onClosed?: (link: TcpKnLink) => void;
}

/**
 * The client end of one KN thread's data port (src/kn/kn-data-server.ts): a TCP connection that
 * carries the KnChannel's request batches as frames and brings back response frames. It connects
 * at once; Node buffers what is written while it connects.
 *
 * A link is used once. When its connection fails or closes (refused, reset, server gone, a
 * malformed or oversized response frame), requests in flight fail with UNAVAILABLE, later ones with
 * TRYAGAIN, and `onClosed` is called once: the owner drops the link and makes a new one the next
 * time it needs the KN thread.
 */
export class TcpKnLink {
  /** `host:port` of the KN thread's data port. */
  readonly address: string;
  private readonly options: TcpKnLinkOptions;
  private readonly socket: Socket;
  private readonly reader = new FrameReader(maxFrameBytes);
  private readonly knChannel: KnChannel;
  private open = true;
  private failure = 'the server closed it';

  constructor(options: TcpKnLinkOptions) {
    this.options = options;
    const { host, port } = options;
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.knChannel = new KnChannel((batch) => this.post(batch), options.clock, {
      rank: options.rank,
      requestTimeoutMs: options.requestTimeoutMs,
      inflightMax: options.inflightMax,
    });
    this.socket = connect({ host, port });
    // Batches are already one per tick; Nagle would only add latency.
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // The error says why; the 'close' that always follows it does the work.
    this.socket.on('error', (err) => (this.failure = err.message));
    this.socket.on('close', () => this.lost());
  }

  get channel(): KnChannel {
    return this.knChannel;
  }

  /** False once the connection closed, by either side. */
  get isOpen(): boolean {
    return this.open;
  }

  /** Closes the link on purpose: requests in flight and later ones fail with CLOSED. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.knChannel.close('CLOSED', `the connection to ${this.describe()} was closed by the client`);
    this.socket.destroy();
  }

  /**
   * Drops the link because the KN thread no longer serves here (the routing table lists it no
   * more, or elsewhere): like a lost connection, requests in flight fail with UNAVAILABLE (they may
   * have taken effect) and later ones with TRYAGAIN, which the client retries at the new owner.
   */
  retire(reason: string): void {
    this.fail(reason);
  }

  private describe(): string {
    return `KN thread ${this.options.rank} at ${this.address}`;
  }

  private post(batch: Uint8Array): void {
    if (!this.open) return;
    try {
      // A batch of many large values may exceed one frame; its requests are independent, so it
      // travels as several frames.
      for (const part of splitBatch(batch, 'request', maxFrameBytes)) {
        this.socket.write(encodeFrame(part));
      }
    } catch (err) {
      this.fail(`a request batch could not be sent: ${String(err)}`);
    }
  }

  private onData(chunk: Buffer): void {
    if (!this.open) return;
    this.reader.push(chunk);
    while (this.open) {
      let frame: Buffer | undefined;
      try {
        frame = this.reader.next();
        if (frame !== undefined) checkResponseBatch(frame);
      } catch (err) {
        // The server does not speak this protocol, or the stream is out of step.
        this.fail(`bad response frame: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      if (frame === undefined) return;
      this.knChannel.onResponses(frame);
    }
  }

  private fail(reason: string): void {
    this.failure = reason;
    this.socket.destroy();
    this.lost();
  }

  /** The connection is gone: fail the channel and tell the owner, once. */
  private lost(): void {
    if (!this.open) return;
    this.open = false;
    this.knChannel.disconnect(`the connection to ${this.describe()} closed: ${this.failure}`);
    this.options.onClosed?.(this);
  }
}
