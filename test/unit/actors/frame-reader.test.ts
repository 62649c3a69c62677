import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameReader, maxFrameBytes } from '../../../src/actors/frame-reader.js';
import { isDinomoError } from '../../../src/errors/index.js';

function payload(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

function drain(reader: FrameReader): Buffer[] {
  const frames: Buffer[] = [];
  for (let frame = reader.next(); frame !== undefined; frame = reader.next()) frames.push(frame);
  return frames;
}

describe('FrameReader', () => {
  const payloads = [payload(0, 1), payload(1, 2), payload(300, 3), payload(70_000, 4)];
  const stream = Buffer.concat(payloads.map((p) => encodeFrame(p)));

  it('returns frames whole whatever the chunk boundaries', () => {
    for (const size of [1, 2, 3, 5, 4096, stream.length]) {
      const reader = new FrameReader(maxFrameBytes);
      const frames: Buffer[] = [];
      for (let at = 0; at < stream.length; at += size) {
        reader.push(stream.subarray(at, at + size));
        frames.push(...drain(reader));
      }
      expect(frames).toEqual(payloads);
      expect(reader.bufferedBytes).toBe(0);
    }
  });

  it('returns a frame that lies inside one chunk as a view, without copying', () => {
    const chunk = encodeFrame(payload(10, 5));
    const reader = new FrameReader(100);
    reader.push(chunk);
    const frame = reader.next();
    expect(frame?.buffer).toBe(chunk.buffer);
  });

  it('throws on an announced length above the limit, before buffering the frame', () => {
    const reader = new FrameReader(16);
    reader.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    const err: unknown = (() => {
      try {
        reader.next();
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isDinomoError(err) && err.code).toBe('INTERNAL');
    expect(String(err)).toMatch(/4294967295 bytes, above the 16-byte limit/);
  });

  it('lets the limit be raised between frames', () => {
    const reader = new FrameReader(4);
    reader.push(Buffer.concat([encodeFrame(payload(4, 6)), encodeFrame(payload(8, 7))]));
    expect(reader.next()).toEqual(payload(4, 6));
    reader.limit = 8;
    expect(reader.next()).toEqual(payload(8, 7));
  });

  it('refuses to encode a payload above the limit', () => {
    expect(() => encodeFrame(payload(9, 8), 8)).toThrow(/exceeds the 8-byte limit/);
  });
});
