import { describe, expect, it } from 'vitest';
import {
  ClientMux,
  checkRequestBatch,
  checkResponseBatch,
  overloadedResponses,
  splitBatch,
} from '../../../src/kn/client-mux.js';
import {
  BatchWriter,
  RequestReader,
  WireOp,
  WireStatus,
  readResponses,
} from '../../../src/kn/wire.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** A batch of gets, one per [id, key]. */
function gets(...requests: [number, string][]): Uint8Array {
  const w = new BatchWriter(64);
  for (const [id, key] of requests) w.addRequest(WireOp.get, id, bytes(key), null);
  return w.take();
}

function requestIds(batch: Uint8Array): number[] {
  const r = new RequestReader();
  r.reset(batch);
  const ids: number[] = [];
  while (r.next()) ids.push(r.requestId);
  return ids;
}

/** What a KN thread would answer: each get gets its key as the value. */
function answerWithKeys(...batches: Uint8Array[]): Uint8Array {
  const w = new BatchWriter(64);
  const r = new RequestReader();
  for (const batch of batches) {
    r.reset(batch);
    while (r.next()) w.addResponse(r.requestId, WireStatus.ok, r.key);
  }
  return w.take();
}

type Answer = [number, string] | [number, string, string];

function answers(batch: Uint8Array): Answer[] {
  const out: Answer[] = [];
  readResponses(batch, (id, _status, payload, code, message) =>
    out.push(code === null ? [id, Buffer.from(payload).toString()] : [id, code, message]),
  );
  return out;
}

/** Routes `responses` and returns what each connection was sent, in delivery order. */
function route(mux: ClientMux, responses: Uint8Array): [number, Answer[]][] {
  const out: [number, Answer[]][] = [];
  mux.route(responses, (connection, batch) => out.push([connection, answers(batch)]));
  return out;
}

describe('ClientMux', () => {
  it('rewrites request ids to mux ids and restores them in the answers', () => {
    const mux = new ClientMux({ maxInflight: 16 });
    const batch = gets([7, 'a'], [8, 'b']);
    const admitted = mux.admit(3, batch);
    expect(admitted).toBe(batch); // Rewritten in place.
    expect(requestIds(batch)).toEqual([1, 2]);
    expect(mux.inflight).toBe(2);
    expect(route(mux, answerWithKeys(batch))).toEqual([
      [
        3,
        [
          [7, 'a'],
          [8, 'b'],
        ],
      ],
    ]);
    expect(mux.inflight).toBe(0);
  });

  it('gives two connections with colliding ids their own answers from one merged batch', () => {
    const mux = new ClientMux({ maxInflight: 16 });
    const first = gets([5, 'one-5'], [6, 'one-6']);
    const second = gets([5, 'two-5']);
    mux.admit(1, first);
    mux.admit(2, second);
    expect(new Set([...requestIds(first), ...requestIds(second)]).size).toBe(3);
    // The thread answers in its own order, interleaving the connections.
    const w = new BatchWriter(64);
    const [a5, a6] = requestIds(first);
    const [b5] = requestIds(second);
    w.addResponse(b5 ?? -1, WireStatus.ok, bytes('two-5'));
    w.addError(a6 ?? -1, 'MOVED', 'slot 9 moved');
    w.addResponse(a5 ?? -1, WireStatus.notFound, null);
    expect(route(mux, w.take())).toEqual([
      [2, [[5, 'two-5']]],
      [
        1,
        [
          [6, 'MOVED', 'slot 9 moved'],
          [5, ''],
        ],
      ],
    ]);
    expect(mux.inflight).toBe(0);
  });

  it('admits nothing and changes nothing when a batch would exceed maxInflight', () => {
    const mux = new ClientMux({ maxInflight: 3 });
    expect(mux.admit(1, gets([1, 'a'], [2, 'b']))).not.toBeNull();
    const batch = gets([10, 'c'], [11, 'd']);
    const before = Uint8Array.from(batch);
    expect(mux.admit(2, batch)).toBeNull();
    expect(batch).toEqual(before);
    expect(mux.inflight).toBe(2);
    expect(answers(overloadedResponses(batch, 'full'))).toEqual([
      [10, 'OVERLOADED', 'full'],
      [11, 'OVERLOADED', 'full'],
    ]);
    // The next admitted id continues where it was: the refused batch took none.
    const next = gets([1, 'e']);
    mux.admit(2, next);
    expect(requestIds(next)).toEqual([3]);
  });

  it('refuses a malformed batch with INVALID_OPTION and changes nothing', () => {
    const mux = new ClientMux({ maxInflight: 16 });
    const good = gets([1, 'key'], [2, 'other']);
    const withValue = new BatchWriter(64);
    withValue.addRequest(WireOp.put, 1, bytes('k'), bytes('v'));
    const put = withValue.take();
    const badOp = Uint8Array.from(good);
    badOp[4] = 9;
    const emptyKey = Uint8Array.from(good);
    emptyKey.set([0, 0], 4 + 5);
    const hugeCount = Uint8Array.from(good);
    hugeCount.set([0xff, 0xff, 0xff, 0x7f], 0);
    const malformed = [
      new Uint8Array(3),
      good.subarray(0, good.length - 1),
      put.subarray(0, put.length - 1),
      Uint8Array.from([...good, 0]),
      badOp,
      emptyKey,
      hugeCount,
    ];
    for (const batch of malformed) {
      const before = Uint8Array.from(batch);
      expect(() => mux.admit(1, batch)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
      expect(batch).toEqual(before);
      expect(mux.inflight).toBe(0);
    }
    expect(() => mux.admit(-1, good)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    mux.admit(1, good);
    expect(requestIds(good)).toEqual([1, 2]);
  });

  it('drops the answers of a forgotten connection, keeping its ids taken until they come', () => {
    const mux = new ClientMux({ maxInflight: 16 });
    const gone = gets([1, 'a'], [2, 'b']);
    const stays = gets([1, 'c']);
    mux.admit(1, gone);
    mux.admit(2, stays);
    mux.forget(1);
    expect(mux.inflight).toBe(3);
    expect(route(mux, answerWithKeys(gone, stays))).toEqual([[2, [[1, 'c']]]]);
    expect(mux.inflight).toBe(0);
    // Answers to ids the mux does not know (answered already, or never admitted) are dropped too.
    expect(route(mux, answerWithKeys(gone))).toEqual([]);
  });

  it('wraps around after idMax, skipping ids still in use', () => {
    const mux = new ClientMux({ maxInflight: 4, idMax: 4 });
    const first = gets([1, 'a'], [2, 'b'], [3, 'c'], [4, 'd']);
    mux.admit(1, first);
    expect(requestIds(first)).toEqual([1, 2, 3, 4]);
    // Ids 2 and 3 are answered; 1 and 4 stay in flight.
    const w = new BatchWriter(64);
    w.addResponse(2, WireStatus.ok, null);
    w.addResponse(3, WireStatus.ok, null);
    mux.route(w.take(), () => {});
    const second = gets([1, 'e'], [2, 'f']);
    mux.admit(2, second);
    expect(requestIds(second)).toEqual([2, 3]);
    expect(mux.admit(2, gets([3, 'g']))).toBeNull();
    const rest = new BatchWriter(64);
    for (const [id, value] of [
      [1, 'a'],
      [4, 'd'],
      [2, 'e'],
      [3, 'f'],
    ] as const) {
      rest.addResponse(id, WireStatus.ok, bytes(value));
    }
    expect(route(mux, rest.take())).toEqual([
      [
        1,
        [
          [1, 'a'],
          [4, 'd'],
        ],
      ],
      [
        2,
        [
          [1, 'e'],
          [2, 'f'],
        ],
      ],
    ]);
  });

  it('refuses bad options', () => {
    for (const options of [
      { maxInflight: 0 },
      { maxInflight: 1.5 },
      { maxInflight: 8, idMax: 7 },
    ]) {
      expect(() => new ClientMux(options)).toThrow(
        expect.objectContaining({ code: 'INVALID_OPTION' }),
      );
    }
  });
});

describe('batch checks and splitting', () => {
  it('checks response batches', () => {
    const w = new BatchWriter(64);
    w.addResponse(1, WireStatus.ok, bytes('v'));
    w.addError(2, 'MOVED', 'elsewhere');
    const batch = w.take();
    expect(checkResponseBatch(batch)).toBe(2);
    expect(() => checkResponseBatch(batch.subarray(0, batch.length - 1))).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    const badStatus = Uint8Array.from(batch);
    badStatus[4 + 4] = 7;
    expect(() => checkResponseBatch(badStatus)).toThrow(/unknown status 7/);
  });

  it('splits a batch into parts of at most the limit that hold the same records', () => {
    const w = new BatchWriter(64);
    for (let i = 0; i < 10; i++) w.addRequest(WireOp.put, i, bytes(`k${i}`), new Uint8Array(100));
    const batch = w.take();
    expect(splitBatch(batch, 'request', batch.length)).toEqual([batch]);
    const parts = splitBatch(batch, 'request', 300);
    expect(parts.length).toBeGreaterThan(3);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(300);
      checkRequestBatch(part);
    }
    expect(parts.flatMap(requestIds)).toEqual(requestIds(batch));
  });
});
