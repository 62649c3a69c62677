import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ActorSystem, TcpTransportServer } from '../../../src/actors/index.js';
import { connectRemote, type ClusterClient } from '../../../src/client/remote-client.js';
import { isDinomoError, type DinomoError } from '../../../src/errors/index.js';
import { ClientMux } from '../../../src/kn/client-mux.js';
import { monitorActorName } from '../../../src/kn/index.js';
import { KnDataServer } from '../../../src/kn/kn-data-server.js';
import { BatchWriter, RequestReader, WireOp, WireStatus } from '../../../src/kn/wire.js';
import {
  encodeSlotMap,
  evenSlotMap,
  monitorSystemLocation,
  slotOfKey,
  type RnMessage,
  type RoutingTable,
} from '../../../src/routing/index.js';
import { systemClock } from '../../../src/time/index.js';

const secret = 'a cluster secret of more than sixteen bytes';
const host = '127.0.0.1';
const text = (b: Uint8Array | null | undefined): string | null =>
  b === null || b === undefined ? null : Buffer.from(b).toString('utf8');

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Stands in for the monitor process: an actor system at monitorSystemLocation whose monitor actor
 * answers `routing` with `table`, which the test changes at will.
 */
class FakeMonitor {
  table: RoutingTable;
  fetches = 0;
  readonly refusals: DinomoError[] = [];
  readonly system: ActorSystem;
  server: TcpTransportServer | undefined;

  constructor(table: RoutingTable) {
    this.table = table;
    this.system = ActorSystem.start({ ...monitorSystemLocation, onError: () => {} });
    this.system.spawn<null, RnMessage>(monitorActorName, {
      initialState: null,
      handle: (state, msg, ctx) => {
        this.fetches++;
        ctx.reply(msg.replyTo, this.table);
        return state;
      },
    });
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  static async start(table: RoutingTable, key: string = secret): Promise<FakeMonitor> {
    const monitor = new FakeMonitor(table);
    cleanups.push(() => monitor.system.stop());
    monitor.server = await TcpTransportServer.listen(monitor.system, {
      port: 0,
      secret: key,
      onHandshakeError: (e) => monitor.refusals.push(e),
    });
    const server = monitor.server;
    cleanups.push(() => server.close());
    return monitor;
  }
}

/**
 * Stands in for a KN thread behind its data port: a key-value map (shared with another FakeKn to
 * play the same thread after a restart). put stores and answers ok; get answers ok and the value
 * or notFound; delete answers ok or notFound. Keys in `moved` are answered with MOVED. While
 * `hold` is set, batches are kept and never answered.
 */
class FakeKn {
  server: KnDataServer | undefined;
  hold = false;
  readonly held: Uint8Array[] = [];
  readonly moved = new Set<string>();
  onMoved: () => void = () => {};
  requests = 0;
  movedAnswers = 0;

  constructor(readonly store = new Map<string, Uint8Array>()) {}

  readonly deliver = (batch: Uint8Array): void => {
    if (this.hold) {
      this.held.push(batch);
      return;
    }
    // A KN thread answers later, never from inside the server's own call.
    setImmediate(() => this.answer(batch));
  };

  private answer(batch: Uint8Array): void {
    const r = new RequestReader();
    const w = new BatchWriter(256);
    r.reset(batch);
    while (r.next()) {
      this.requests++;
      const key = Buffer.from(r.key).toString('utf8');
      if (this.moved.has(key)) {
        this.movedAnswers++;
        w.addError(r.requestId, 'MOVED', `slot of ${key} has another owner`);
        this.onMoved();
        continue;
      }
      if (r.op === WireOp.put) {
        this.store.set(key, Uint8Array.from(r.value));
        w.addResponse(r.requestId, WireStatus.ok, null);
      } else if (r.op === WireOp.get) {
        const value = this.store.get(key);
        if (value === undefined) w.addResponse(r.requestId, WireStatus.notFound, null);
        else w.addResponse(r.requestId, WireStatus.ok, value);
      } else {
        const existed = this.store.delete(key);
        w.addResponse(r.requestId, existed ? WireStatus.ok : WireStatus.notFound, null);
      }
    }
    this.server?.onResponses(w.take());
  }
}

async function startKn(store?: Map<string, Uint8Array>): Promise<FakeKn> {
  const kn = new FakeKn(store);
  const server = await KnDataServer.listen({
    host,
    port: 0,
    clock: systemClock,
    mux: new ClientMux({ maxInflight: 1024 }),
    deliver: kn.deliver,
  });
  kn.server = server;
  cleanups.push(() => server.close());
  return kn;
}

function tableOf(owners: Uint16Array, kns: readonly (FakeKn | null)[], epoch = 1): RoutingTable {
  const endpoints = kns.flatMap((kn, rank) =>
    kn?.server === undefined ? [] : [{ rank, knId: 10 + rank, host, port: kn.server.port }],
  );
  return { epoch, slotMap: encodeSlotMap(owners), endpoints };
}

/** A key whose slot `owners` gives to `rank`. */
function keyOn(owners: Uint16Array, rank: number, prefix: string): string {
  for (let i = 0; ; i++) {
    const key = `${prefix}-${i}`;
    if (owners[slotOfKey(Buffer.from(key))] === rank) return key;
  }
}

async function connectTo(monitor: FakeMonitor, requestTimeoutMs = 1000): Promise<ClusterClient> {
  const client = await connectRemote({ host, port: monitor.port, secret, requestTimeoutMs });
  cleanups.push(() => client.close());
  return client;
}

/** A loopback port on which nothing listens (it was free a moment ago). */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, host);
  await once(probe, 'listening');
  const address = probe.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  probe.close();
  await once(probe, 'close');
  return port;
}

function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

describe('connectRemote', () => {
  it('puts, gets and deletes across two KN threads, each key at the owner of its slot', async () => {
    const kn0 = await startKn();
    const kn1 = await startKn();
    const owners = evenSlotMap(2);
    const monitor = await FakeMonitor.start(tableOf(owners, [kn0, kn1]));
    const client = await connectTo(monitor);
    expect(monitor.fetches).toBe(1);

    const k0 = keyOn(owners, 0, 'left');
    const k1 = keyOn(owners, 1, 'right');
    await client.put(k0, 'zero');
    await client.put(k1, new Uint8Array([1, 2, 255]));
    expect([...kn0.store.keys()]).toEqual([k0]);
    expect([...kn1.store.keys()]).toEqual([k1]);

    const got0 = await client.get(k0);
    expect(Buffer.isBuffer(got0)).toBe(true);
    expect(text(got0)).toBe('zero');
    expect([...((await client.get(k1)) ?? [])]).toEqual([1, 2, 255]);
    await expect(client.get(keyOn(owners, 1, 'absent'))).resolves.toBeNull();

    // Many requests at once, spread over both threads.
    const keys = Array.from({ length: 50 }, (_, i) => `many-${i}`);
    await Promise.all(keys.map((k) => client.put(k, `v-${k}`)));
    const values = await Promise.all(keys.map((k) => client.get(k)));
    expect(values.map(text)).toEqual(keys.map((k) => `v-${k}`));
    expect(kn0.store.size).toBeGreaterThan(1);
    expect(kn1.store.size).toBeGreaterThan(1);

    await expect(client.delete(k0)).resolves.toBe(true);
    await expect(client.delete(k0)).resolves.toBe(false);
    await expect(client.get(k0)).resolves.toBeNull();
    expect(kn0.store.has(k0)).toBe(false);
    expect(text(await client.get(k1))).not.toBeNull();
    // No request was refused, so the routing was never fetched again.
    expect(monitor.fetches).toBe(1);
    await expect(client.get('')).rejects.toMatchObject({ code: 'INVALID_KEY' });
  });

  it('retries a MOVED request at the new owner once the refreshed routing says so', async () => {
    const kn0 = await startKn();
    const kn1 = await startKn();
    const owners = evenSlotMap(2);
    const monitor = await FakeMonitor.start(tableOf(owners, [kn0, kn1]));
    const client = await connectTo(monitor);
    const key = keyOn(owners, 0, 'moving');

    // The slot moves to rank 1 only when rank 0 first refuses the key.
    const moved = Uint16Array.from(owners);
    moved[slotOfKey(Buffer.from(key))] = 1;
    kn0.moved.add(key);
    kn0.onMoved = () => (monitor.table = tableOf(moved, [kn0, kn1], 2));

    await client.put(key, 'here');
    expect(kn0.movedAnswers).toBeGreaterThanOrEqual(1);
    expect(kn0.store.has(key)).toBe(false);
    expect(text(kn1.store.get(key))).toBe('here');
    expect(monitor.fetches).toBeGreaterThanOrEqual(2);

    // The client now holds the new map: the next request goes straight to rank 1.
    const refused = kn0.movedAnswers;
    expect(text(await client.get(key))).toBe('here');
    await expect(client.delete(key)).resolves.toBe(true);
    expect(kn0.movedAnswers).toBe(refused);
  });

  it('retries a get cut off by a closed data port at the new endpoint of its rank', async () => {
    const store0 = new Map<string, Uint8Array>();
    const kn0 = await startKn(store0);
    const kn1 = await startKn();
    const owners = evenSlotMap(2);
    const monitor = await FakeMonitor.start(tableOf(owners, [kn0, kn1]));
    const client = await connectTo(monitor);
    const key = keyOn(owners, 0, 'survivor');
    await client.put(key, 'kept');

    kn0.hold = true;
    const got = client.get(key);
    const put = client.put(keyOn(owners, 0, 'lost'), 'maybe');
    const putFails = expect(put).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await vi.waitFor(() => expect(kn0.held).toHaveLength(1));

    // The same thread restarts on another port: the monitor now lists that one.
    const restarted = await startKn(store0);
    monitor.table = tableOf(owners, [restarted, kn1], 2);
    const fetched = monitor.fetches;
    await kn0.server?.close();

    // The get is retried after a refresh; the write is reported (it may have taken effect).
    expect(text(await got)).toBe('kept');
    await putFails;
    expect(restarted.requests).toBeGreaterThanOrEqual(1);
    expect(monitor.fetches).toBeGreaterThan(fetched);
    // Later requests go to the new port.
    await client.put(key, 'again');
    expect(text(store0.get(key))).toBe('again');
    expect(kn0.held).toHaveLength(1);
  });

  it('retries a get in flight at a KN thread that left the routing table, at its new port', async () => {
    const store0 = new Map<string, Uint8Array>();
    const kn0 = await startKn(store0);
    const kn1 = await startKn();
    const owners = evenSlotMap(2);
    const monitor = await FakeMonitor.start(tableOf(owners, [kn0, kn1]));
    const client = await connectTo(monitor);
    const key = keyOn(owners, 0, 'elsewhere');
    await client.put(key, 'kept');

    kn0.hold = true;
    const got = client.get(key);
    const putFails = expect(client.put(keyOn(owners, 0, 'lost'), 'maybe')).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /left the routing table/,
    });
    await vi.waitFor(() => expect(kn0.held).toHaveLength(1));
    // Rank 0 now serves on another port, while the old one stays open (and silent).
    const moved = await startKn(store0);
    monitor.table = tableOf(owners, [moved, kn1], 2);
    // A refused request elsewhere makes the client fetch the routing again (at most every 20 ms).
    const trigger = keyOn(owners, 1, 'trigger');
    kn1.moved.add(trigger);
    kn1.onMoved = () => kn1.moved.clear();
    await new Promise((resolve) => setTimeout(resolve, 25));
    await expect(client.get(trigger)).resolves.toBeNull();

    expect(text(await got)).toBe('kept');
    await putFails;
    expect(moved.requests).toBeGreaterThanOrEqual(1);
    await vi.waitFor(() => expect(kn0.server?.stats.connections).toBe(0));
  });

  it('retries requests for a rank without an endpoint with TRYAGAIN until requestTimeoutMs', async () => {
    const kn0 = await startKn();
    const kn1 = await startKn();
    const owners = evenSlotMap(2);
    const monitor = await FakeMonitor.start(tableOf(owners, [kn0, null]));
    const client = await connectTo(monitor, 300);
    const k0 = keyOn(owners, 0, 'served');
    const k1 = keyOn(owners, 1, 'orphan');

    await client.put(k0, 'ok');
    const started = process.hrtime.bigint();
    await expect(client.get(k1)).rejects.toMatchObject({
      code: 'TRYAGAIN',
      message: /no route to KN thread 1/,
    });
    const took = elapsedMs(started);
    expect(took).toBeGreaterThanOrEqual(280);
    expect(took).toBeLessThan(1500);
    // It asked the monitor again while it retried (at most once per 20 ms).
    expect(monitor.fetches).toBeGreaterThan(2);
    expect(monitor.fetches).toBeLessThan(30);
    expect(kn1.requests).toBe(0);

    // The rank gets an endpoint while a request is being retried: it goes through.
    const late = client.put(k1, 'late');
    await new Promise((resolve) => setTimeout(resolve, 50));
    monitor.table = tableOf(owners, [kn0, kn1], 2);
    await late;
    expect(text(kn1.store.get(k1))).toBe('late');
  });

  it('fails requests in flight with CLOSED after close(), and later ones too', async () => {
    const kn0 = await startKn();
    const owners = new Uint16Array(16384);
    const monitor = await FakeMonitor.start(tableOf(owners, [kn0]));
    const client = await connectTo(monitor, 300);
    await client.put('k', 'v');

    kn0.hold = true;
    const inFlight = client.get('k');
    const inFlightFails = expect(inFlight).rejects.toMatchObject({ code: 'CLOSED' });
    await vi.waitFor(() => expect(kn0.held).toHaveLength(1));
    await client.close();
    await inFlightFails;
    await vi.waitFor(() => expect(kn0.server?.stats.connections).toBe(0));
    await vi.waitFor(() => expect(monitor.server?.peers).toEqual([]));

    const fetched = monitor.fetches;
    const requests = kn0.requests;
    // Later requests fail too and reach no server. (Today they fail only after requestTimeoutMs,
    // with TRYAGAIN: the closed router has no route, and the client retries that; see the report.)
    const started = process.hrtime.bigint();
    const failures = await Promise.all(
      [client.get('k'), client.put('k', 'w'), client.delete('k')].map((p) =>
        p.then(
          () => null,
          (err: unknown) => err,
        ),
      ),
    );
    for (const failure of failures) {
      expect(isDinomoError(failure) ? failure.code : failure).toMatch(/^(CLOSED|TRYAGAIN)$/);
    }
    expect(elapsedMs(started)).toBeLessThan(1000);
    await client.close();
    expect(monitor.fetches).toBe(fetched);
    expect(kn0.requests).toBe(requests);
    expect(kn0.server?.stats.connections).toBe(0);
  });

  it('rejects with UNAVAILABLE within requestTimeoutMs when nothing listens', async () => {
    const port = await freePort();
    const started = process.hrtime.bigint();
    await expect(
      connectRemote({ host, port, secret, requestTimeoutMs: 200 }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const took = elapsedMs(started);
    expect(took).toBeGreaterThanOrEqual(180);
    expect(took).toBeLessThan(1000);
  });

  it('rejects a monitor that does not hold the same secret', async () => {
    const kn0 = await startKn();
    const monitor = await FakeMonitor.start(
      tableOf(new Uint16Array(16384), [kn0]),
      'another secret, also long enough',
    );
    // A refused handshake fails the connect at once with UNAUTHORIZED, not after the timeout.
    const started = process.hrtime.bigint();
    await expect(
      connectRemote({ host, port: monitor.port, secret, requestTimeoutMs: 2000 }),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(elapsedMs(started)).toBeLessThan(1000);
    expect(monitor.fetches).toBe(0);
    // The monitor may log its side of the refusal a moment after the client has given up.
    await vi.waitFor(() => expect(monitor.refusals.length).toBeGreaterThanOrEqual(1));
    expect(monitor.refusals.every((e) => e.code === 'UNAUTHORIZED')).toBe(true);
  });
});
