import { createHmac, timingSafeEqual } from 'node:crypto';
import { Encoder } from 'cbor-x';
import { DinomoError, ErrorCodes, type ErrorCode } from '../errors/index.js';
import { isSystemAddress } from './address.js';

/**
 * The messages and proofs of the TCP transport's handshake, with no socket in sight (the driver is
 * in tcp-transport.ts). Both sides hold the cluster secret; each proves it to the other with an
 * HMAC-SHA256 over both sides' fresh nonces and both system addresses, so a proof cannot be replayed
 * on another connection, reflected back to its sender, or moved to another pair of systems:
 *
 *   connector                                        acceptor
 *     hello     { version, from: A, nonce: Nc }  ->
 *               <-  challenge { from: B, nonce: Na, proof: HMAC(s, acceptor  | Nc | Na | A | B) }
 *     proof     { proof: HMAC(s, connector | Nc | Na | A | B) }  ->
 *               <-  ready                 (or refused { code, reason }: B already talks to A)
 *
 * The connector checks the acceptor's proof before it sends its own, so it never proves anything to
 * a stranger; the acceptor attaches the connection only once the connector's proof checks.
 */

export const handshakeVersion = 1;
export const nonceBytes = 32;
const proofBytes = 32;
/** The shortest secret accepted: 128 bits, so that guessing it is out of reach. */
export const minSecretBytes = 16;
/** Handshake messages are tiny; a larger frame is refused before it is buffered. */
export const maxHandshakeFrameBytes = 1024;
/**
 * Refusal reasons are cut to this many UTF-16 units (at most 3 UTF-8 bytes each) so that a refusal
 * always fits in a handshake frame.
 */
const maxReasonChars = 200;

export type HandshakeRole = 'connector' | 'acceptor';

export type HandshakeMessage =
  | {
      readonly kind: 'hello';
      readonly version: number;
      readonly from: string;
      readonly nonce: Uint8Array;
    }
  | {
      readonly kind: 'challenge';
      readonly from: string;
      readonly nonce: Uint8Array;
      readonly proof: Uint8Array;
    }
  | { readonly kind: 'proof'; readonly proof: Uint8Array }
  | { readonly kind: 'ready' }
  | { readonly kind: 'refused'; readonly code: ErrorCode; readonly reason: string };

/** Everything both proofs cover. */
export interface Transcript {
  readonly connector: string;
  readonly acceptor: string;
  readonly connectorNonce: Uint8Array;
  readonly acceptorNonce: Uint8Array;
}

/**
 * Checks and copies the cluster secret (a copy, so that a caller reusing its buffer cannot change
 * it under a live server). Throws INVALID_OPTION if it is not a string or bytes of 16 bytes or more.
 */
export function clusterSecret(secret: unknown): Buffer {
  let bytes: Buffer;
  if (typeof secret === 'string') bytes = Buffer.from(secret, 'utf8');
  else if (secret instanceof Uint8Array) bytes = Buffer.from(secret);
  else {
    throw new DinomoError(
      'INVALID_OPTION',
      'secret must be the cluster secret as a string or Uint8Array; give every process the same one',
    );
  }
  if (bytes.length < minSecretBytes) {
    throw new DinomoError(
      'INVALID_OPTION',
      `secret is ${bytes.length} bytes; use at least ${minSecretBytes} random bytes ` +
        '(for example `openssl rand -hex 32`) and give every process the same one',
    );
  }
  return bytes;
}

/** The proof that `role` knows `secret`, bound to this connection's transcript. */
export function handshakeProof(secret: Buffer, role: HandshakeRole, t: Transcript): Buffer {
  // Nonces have a fixed length and addresses cannot hold a newline, so the input is unambiguous.
  return createHmac('sha256', secret)
    .update(`dinomo-actors/${handshakeVersion}/${role}\n`)
    .update(t.connectorNonce)
    .update(t.acceptorNonce)
    .update(`${t.connector}\n${t.acceptor}`)
    .digest();
}

/** Compares a received proof with the expected one in constant time. */
export function proofMatches(expected: Buffer, received: Uint8Array): boolean {
  return received.length === expected.length && timingSafeEqual(expected, received);
}

/** Records off, as in codec.ts, so that every message decodes on its own. */
const encoder = new Encoder({ useRecords: false });

export function encodeHandshake(message: HandshakeMessage): Uint8Array {
  const clipped =
    message.kind === 'refused'
      ? { ...message, reason: message.reason.slice(0, maxReasonChars) }
      : message;
  return new Uint8Array(encoder.encode(clipped));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.length === length;
}

/** Decodes one handshake message; undefined if it is not a well-formed one. */
export function decodeHandshake(bytes: Uint8Array): HandshakeMessage | undefined {
  let value: unknown;
  try {
    value = encoder.decode(bytes) as unknown;
  } catch {
    return undefined;
  }
  if (!isRecord(value)) return undefined;
  const { kind, version, from, nonce, proof, code, reason } = value;
  switch (kind) {
    case 'hello':
      if (typeof version !== 'number' || typeof from !== 'string' || !isSystemAddress(from))
        return undefined;
      return isBytes(nonce, nonceBytes) ? { kind, version, from, nonce } : undefined;
    case 'challenge':
      if (typeof from !== 'string' || !isSystemAddress(from)) return undefined;
      if (!isBytes(nonce, nonceBytes) || !isBytes(proof, proofBytes)) return undefined;
      return { kind, from, nonce, proof };
    case 'proof':
      return isBytes(proof, proofBytes) ? { kind, proof } : undefined;
    case 'ready':
      return { kind };
    case 'refused': {
      if (typeof code !== 'string' || typeof reason !== 'string') return undefined;
      const known: ErrorCode = Object.hasOwn(ErrorCodes, code) ? (code as ErrorCode) : 'INTERNAL';
      return { kind, code: known, reason };
    }
    default:
      return undefined;
  }
}
