import { describe, expect, it } from 'vitest';
import {
  actorAddress,
  decodeEnvelope,
  encodeEnvelope,
  isSystemAddress,
  splitAddress,
  systemAddress,
  type Envelope,
} from '../../../src/actors/index.js';
import { Encoder } from 'cbor-x';

const raw = new Encoder({ useRecords: false });

describe('envelope codec', () => {
  it('encodes into an exact-size Uint8Array, not a view on a pooled buffer', () => {
    const envelope: Envelope = {
      kind: 'msg',
      to: 'n/0/1/a',
      from: 'n/0/2',
      replyId: 3,
      body: { type: 'x' },
    };
    const bytes = encodeEnvelope(envelope);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(bytes)).toBe(false);
    expect(bytes.byteOffset).toBe(0);
    expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    expect(decodeEnvelope(bytes)).toEqual(envelope);
  });

  it('round-trips answers and errors', () => {
    const ok: Envelope = {
      kind: 'reply',
      to: 'n/0/1',
      from: 'n/0/2',
      replyId: 9,
      body: [1, 'two'],
    };
    const bad: Envelope = {
      kind: 'reply',
      to: 'n/0/1',
      from: 'n/0/2',
      replyId: 9,
      error: { code: 'MOVED', message: 'MOVED: elsewhere' },
    };
    expect(decodeEnvelope(encodeEnvelope(ok))).toEqual(ok);
    expect(decodeEnvelope(encodeEnvelope(bad))).toEqual(bad);
  });

  it('rejects frames that are not envelopes', () => {
    const frames: unknown[] = [
      42,
      { kind: 'msg', to: 'a', from: 'b', replyId: 0, body: { notType: 1 } },
      { kind: 'msg', to: 'a', from: 'b', replyId: -1, body: { type: 'x' } },
      { kind: 'msg', to: 1, from: 'b', replyId: 0, body: { type: 'x' } },
      { kind: 'other', to: 'a', from: 'b', replyId: 0 },
      { kind: 'reply', to: 'a', from: 'b', replyId: 1, error: 'oops' },
    ];
    for (const frame of frames) {
      expect(() => decodeEnvelope(new Uint8Array(raw.encode(frame)))).toThrow(
        /malformed actor frame/,
      );
    }
    expect(() => decodeEnvelope(new Uint8Array([0xff]))).toThrow(/malformed actor frame/);
  });

  it('maps an unknown error code to INTERNAL', () => {
    const frame = {
      kind: 'reply',
      to: 'a',
      from: 'b',
      replyId: 1,
      error: { code: 'NOPE', message: 'm' },
    };
    expect(decodeEnvelope(new Uint8Array(raw.encode(frame)))).toMatchObject({
      error: { code: 'INTERNAL' },
    });
  });
});

describe('addresses', () => {
  it('builds and splits node/process/thread/actor', () => {
    const system = systemAddress({ node: 'kn-1', process: 12, thread: 0 });
    expect(system).toBe('kn-1/12/0');
    expect(isSystemAddress(system)).toBe(true);
    expect(actorAddress(system, 'dac')).toBe('kn-1/12/0/dac');
    expect(splitAddress('kn-1/12/0/dac')).toEqual({ system: 'kn-1/12/0', actor: 'dac' });
  });

  it('rejects malformed parts', () => {
    expect(() => systemAddress({ node: '', process: 0, thread: 0 })).toThrow(/INVALID_OPTION/);
    expect(() => actorAddress('n/0/0', 'a b')).toThrow(/actor name/);
    expect(() => splitAddress('n/0/0')).toThrow(/not an actor address/);
    expect(() => splitAddress('n/0/0/a/b')).toThrow(/not an actor address/);
    expect(isSystemAddress('n/0')).toBe(false);
  });
});
