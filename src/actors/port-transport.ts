import type { MessagePort } from 'node:worker_threads';
import { DinomoError } from '../errors/index.js';
import { decodeEnvelope, encodeEnvelope, type Envelope } from './codec.js';
import type { ActorSystem, Transport, TransportLink } from './system.js';

/**
 * Connects this thread's actor system to the one at `peer` over one end of a MessageChannel (or a
 * worker's parentPort). Each envelope travels as one cbor-x frame in an exact-size Uint8Array,
 * copied rather than transferred: for small frames a copy is cheaper than a transfer.
 * Closing either end closes both transports, and asks waiting on the other side fail with CLOSED.
 */
export class PortTransport implements Transport {
  readonly peer: string;
  private readonly port: MessagePort;
  private readonly link: TransportLink;
  private open = true;

  /** Throws INVALID_OPTION if `peer` is malformed, is `system` itself, or already has a transport. */
  constructor(system: ActorSystem, port: MessagePort, peer: string) {
    this.peer = peer;
    this.port = port;
    this.link = system.attach(this);
    port.on('message', (data: unknown) => this.onFrame(data));
    port.on('close', () => this.onClose());
  }

  send(envelope: Envelope): boolean {
    if (!this.open) return false;
    this.port.postMessage(encodeEnvelope(envelope));
    return true;
  }

  close(): void {
    if (!this.open) return;
    this.port.close();
    this.onClose();
  }

  private onFrame(data: unknown): void {
    if (!this.open) return;
    if (!(data instanceof Uint8Array)) {
      this.link.fault(new DinomoError('INTERNAL', 'actor frame is not a Uint8Array'), this.peer);
      return;
    }
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(data);
    } catch (err) {
      this.link.fault(err, this.peer);
      return;
    }
    this.link.receive(envelope);
  }

  private onClose(): void {
    if (!this.open) return;
    this.open = false;
    this.link.closed();
  }
}
