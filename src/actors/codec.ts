import { Encoder } from 'cbor-x';
import { DinomoError, ErrorCodes, type ErrorCode, type WireError } from '../errors/index.js';
import type { Message } from './types.js';

/**
 * What crosses a transport. A request carries the sender's system address and, for an ask, the ask's
 * id (0 for a tell), so that the receiving system can answer an ask it cannot deliver (unknown actor,
 * full mailbox, crash) without looking inside the body.
 */
export interface MessageEnvelope {
  readonly kind: 'msg';
  /** The destination actor's address. */
  readonly to: string;
  /** The sending system's address. */
  readonly from: string;
  readonly replyId: number;
  readonly body: Message;
}

/** An answer to an ask: `error` present means failure, otherwise `body` is the value. */
export interface ReplyEnvelope {
  readonly kind: 'reply';
  /** The asking system's address. */
  readonly to: string;
  readonly from: string;
  readonly replyId: number;
  readonly body?: unknown;
  readonly error?: WireError;
}

export type Envelope = MessageEnvelope | ReplyEnvelope;

/**
 * Records are off so that every frame decodes on its own, without structures shared between the two
 * ends. Maps, Sets, bigints and typed arrays round-trip; functions and class prototypes do not.
 */
const encoder = new Encoder({ useRecords: false });

/**
 * Encodes an envelope into a Uint8Array of exactly its own size. cbor-x returns a view on its 8 KiB
 * internal buffer, and posting a view would clone (or, transferred, detach) that whole buffer.
 * Throws if the envelope holds something CBOR cannot carry, such as a function.
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const view = encoder.encode(envelope);
  return new Uint8Array(view);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function malformed(why: string): DinomoError {
  return new DinomoError('INTERNAL', `malformed actor frame: ${why}`);
}

function decodeWireError(value: unknown): WireError {
  if (!isRecord(value) || typeof value.code !== 'string' || typeof value.message !== 'string') {
    throw malformed('error is not {code, message}');
  }
  const code: ErrorCode = Object.hasOwn(ErrorCodes, value.code)
    ? (value.code as ErrorCode)
    : 'INTERNAL';
  return { code, message: value.message };
}

/** Decodes and checks one frame; throws DinomoError('INTERNAL') if it is not an envelope. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  let value: unknown;
  try {
    value = encoder.decode(bytes) as unknown;
  } catch (err) {
    throw malformed(err instanceof Error ? err.message : String(err));
  }
  if (!isRecord(value)) throw malformed('not a map');
  const { kind, to, from, replyId, body } = value;
  if (typeof to !== 'string' || typeof from !== 'string') throw malformed('to/from not strings');
  if (typeof replyId !== 'number' || !Number.isSafeInteger(replyId) || replyId < 0) {
    throw malformed('bad replyId');
  }
  if (kind === 'msg') {
    if (!isRecord(body) || typeof body.type !== 'string')
      throw malformed('body has no string type');
    return { kind, to, from, replyId, body: body as unknown as Message };
  }
  if (kind === 'reply') {
    if (value.error === undefined) return { kind, to, from, replyId, body };
    return { kind, to, from, replyId, error: decodeWireError(value.error) };
  }
  throw malformed(`unknown kind ${String(kind)}`);
}
