import { describe, expect, it } from 'vitest';
import {
  BatchWriter,
  RequestReader,
  WireOp,
  WireStatus,
  readResponses,
} from '../../../src/kn/wire.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

describe('wire format', () => {
  it('round-trips a request batch with views into the batch', () => {
    const w = new BatchWriter(16); // Small on purpose: the writer must grow.
    w.addRequest(WireOp.put, 7, bytes('k1'), bytes('value-1'));
    w.addRequest(WireOp.get, 8, bytes('k2'), null);
    w.addRequest(WireOp.delete, 0xffff_fffe, bytes('k3'), null);
    const batch = w.take();
    expect(w.count).toBe(0);
    const r = new RequestReader();
    r.reset(batch);
    const seen: string[] = [];
    while (r.next())
      seen.push(
        `${r.op}:${r.requestId}:${Buffer.from(r.key).toString()}:${Buffer.from(r.value).toString()}`,
      );
    expect(seen).toEqual(['2:7:k1:value-1', '1:8:k2:', '3:4294967294:k3:']);
  });

  it('round-trips responses, including error codes and messages', () => {
    const w = new BatchWriter();
    w.addResponse(1, WireStatus.ok, bytes('hello'));
    w.addResponse(2, WireStatus.notFound, null);
    w.addError(3, 'MOVED', 'slot 12 is elsewhere');
    const out: unknown[] = [];
    const n = readResponses(w.take(), (id, status, payload, code, message) =>
      out.push([id, status, Buffer.from(payload).toString(), code, message]),
    );
    expect(n).toBe(3);
    expect(out[0]).toEqual([1, WireStatus.ok, 'hello', null, '']);
    expect(out[1]).toEqual([2, WireStatus.notFound, '', null, '']);
    expect((out[2] as unknown[]).slice(0, 2)).toEqual([3, WireStatus.error]);
    expect((out[2] as unknown[])[3]).toBe('MOVED');
    expect((out[2] as unknown[])[4]).toBe('slot 12 is elsewhere');
  });

  it('reuses its buffer: a second batch does not contain the first', () => {
    const w = new BatchWriter();
    w.addResponse(1, WireStatus.ok, bytes('aaaa'));
    w.take();
    w.addResponse(2, WireStatus.ok, null);
    const ids: number[] = [];
    readResponses(w.take(), (id) => ids.push(id));
    expect(ids).toEqual([2]);
  });
});
