import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encodeFrame } from '../../../src/actors/index.js';
import { TcpKnLink } from '../../../src/client/tcp-kn-link.js';
import { ClientMux } from '../../../src/kn/client-mux.js';
import { KnDataServer, type KnDataServerOptions } from '../../../src/kn/kn-data-server.js';
import { BatchWriter, RequestReader, WireOp, WireStatus } from '../../../src/kn/wire.js';
import { systemClock } from '../../../src/time/index.js';

const host = '127.0.0.1';
const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');
const bigValueBytes = 1024 * 1024;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * Stands in for a KN thread: it answers each get with its key as the value (or with 1 MiB for keys
 * starting with 'big'), and each put and delete with ok, asynchronously. It answers once it holds
 * `batchesPerAnswer` batches, all in one response batch, so that batches of several connections
 * are merged and the mux must split them; while `hold` is set it answers nothing.
 */
class FakeKn {
  server: KnDataServer | undefined;
  hold = false;
  batchesPerAnswer = 1;
  /** How many request batches each response batch answered. */
  readonly merged: number[] = [];
  private readonly queue: Uint8Array[] = [];

  readonly deliver = (batch: Uint8Array): void => {
    this.queue.push(batch);
    this.schedule();
  };

  get queued(): number {
    return this.queue.length;
  }

  release(): void {
    this.hold = false;
    this.batchesPerAnswer = 1;
    this.schedule();
  }

  private schedule(): void {
    if (this.hold || this.queue.length < this.batchesPerAnswer) return;
    setImmediate(() => this.answer());
  }

  private answer(): void {
    const batches = this.queue.splice(0);
    if (batches.length === 0) return;
    this.merged.push(batches.length);
    const w = new BatchWriter(64);
    const r = new RequestReader();
    for (const batch of batches) {
      r.reset(batch);
      while (r.next()) w.addResponse(r.requestId, WireStatus.ok, this.valueOf(r.op, r.key));
    }
    this.server?.onResponses(w.take());
  }

  private valueOf(op: number, key: Uint8Array): Uint8Array | null {
    if (op !== WireOp.get) return null;
    if (Buffer.from(key).toString().startsWith('big')) return new Uint8Array(bigValueBytes).fill(7);
    return key;
  }
}

async function serve(
  options: Partial<KnDataServerOptions> = {},
  maxInflight = 1024,
): Promise<{ server: KnDataServer; kn: FakeKn; mux: ClientMux }> {
  const kn = new FakeKn();
  const mux = new ClientMux({ maxInflight });
  const server = await KnDataServer.listen({
    host,
    port: 0,
    clock: systemClock,
    mux,
    deliver: kn.deliver,
    ...options,
  });
  kn.server = server;
  cleanups.push(() => server.close());
  return { server, kn, mux };
}

interface Linked {
  link: TcpKnLink;
  closedCalls: number;
}

function link(port: number): Linked {
  const linked: Linked = {
    link: new TcpKnLink({
      host,
      port,
      rank: 3,
      clock: systemClock,
      requestTimeoutMs: 5000,
      inflightMax: 1000,
      onClosed: () => linked.closedCalls++,
    }),
    closedCalls: 0,
  };
  cleanups.push(() => linked.link.close());
  return linked;
}

async function get(linked: Linked, key: string): Promise<string> {
  const result = await linked.link.channel.submit(WireOp.get, bytes(key), null);
  return Buffer.from(result.value ?? new Uint8Array(0)).toString();
}

/** A raw client socket, for what a TcpKnLink would never send. */
async function rawSocket(port: number): Promise<Socket> {
  const socket = connect({ host, port });
  socket.on('error', () => {});
  cleanups.push(() => socket.destroy());
  await once(socket, 'connect');
  return socket;
}

describe('KnDataServer and TcpKnLink', () => {
  it('brings every answer to its own caller when two links use the same request ids', async () => {
    const { server, kn, mux } = await serve();
    kn.batchesPerAnswer = 2;
    const a = link(server.port);
    const b = link(server.port);
    const keys = Array.from({ length: 50 }, (_, i) => i);
    const fromA = keys.map((i) => get(a, `a-${i}`));
    const fromB = keys.map((i) => get(b, `b-${i}`));
    expect(await Promise.all(fromA)).toEqual(keys.map((i) => `a-${i}`));
    expect(await Promise.all(fromB)).toEqual(keys.map((i) => `b-${i}`));
    expect(kn.merged).toEqual([2]);
    expect(mux.inflight).toBe(0);
    expect(server.stats).toMatchObject({ connections: 2, protocolErrors: 0, overloaded: 0 });
    expect(server.address).toBe(`${host}:${server.port}`);
  });

  it('carries batches larger than one frame both ways', async () => {
    const { server } = await serve();
    const a = link(server.port);
    const big = new Uint8Array(bigValueBytes).fill(1);
    const puts = Array.from({ length: 5 }, (_, i) =>
      a.link.channel.submit(WireOp.put, bytes(`k${i}`), big),
    );
    const gets = Array.from({ length: 5 }, (_, i) => get(a, `big-${i}`));
    await expect(Promise.all(puts)).resolves.toHaveLength(5);
    for (const value of await Promise.all(gets)) expect(value.length).toBe(bigValueBytes);
  });

  it('answers a batch with OVERLOADED when the mux is full, and serves it again later', async () => {
    const { server, kn } = await serve({}, 4);
    const a = link(server.port);
    kn.hold = true;
    const held = [get(a, 'x'), get(a, 'y'), get(a, 'z')];
    await vi.waitFor(() => expect(kn.queued).toBe(1));
    const refused = [get(a, 'p'), get(a, 'q')];
    for (const answer of refused) {
      await expect(answer).rejects.toMatchObject({ code: 'OVERLOADED', origin: 'remote' });
    }
    expect(server.stats.overloaded).toBe(1);
    kn.release();
    await expect(Promise.all(held)).resolves.toEqual(['x', 'y', 'z']);
    await expect(get(a, 'p')).resolves.toBe('p');
  });

  it('fails requests in flight with UNAVAILABLE and later ones with TRYAGAIN when the server closes', async () => {
    const { server, kn, mux } = await serve();
    const a = link(server.port);
    kn.hold = true;
    const pending = get(a, 'x');
    await vi.waitFor(() => expect(kn.queued).toBe(1));
    await server.close();
    await expect(pending).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(get(a, 'y')).rejects.toMatchObject({ code: 'TRYAGAIN' });
    expect(a.closedCalls).toBe(1);
    expect(a.link.isOpen).toBe(false);
    expect(server.stats.connections).toBe(0);
    // The forgotten request stays in flight at the thread; its late answer is dropped.
    expect(mux.inflight).toBe(1);
    kn.release();
    await vi.waitFor(() => expect(mux.inflight).toBe(0));
  });

  it('fails quickly with UNAVAILABLE or TRYAGAIN when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen({ host, port: 0 }, resolve));
    const address = closed.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const a = link(port);
    const error: unknown = await get(a, 'x').catch((err: unknown) => err);
    expect(['UNAVAILABLE', 'TRYAGAIN']).toContain((error as { code?: string }).code);
    expect((error as Error).message).toMatch(/KN thread 3 at 127\.0\.0\.1:\d+ closed/);
    await vi.waitFor(() => expect(a.closedCalls).toBe(1));
  });

  it('closes only the connection that sends a malformed or oversized frame', async () => {
    const { server } = await serve();
    const a = link(server.port);
    await expect(get(a, 'before')).resolves.toBe('before');
    const garbage = await rawSocket(server.port);
    garbage.write(encodeFrame(Uint8Array.from([1, 0, 0, 0, 99])));
    await once(garbage, 'close');
    const oversized = await rawSocket(server.port);
    oversized.write(Buffer.from([0xff, 0xff, 0xff, 0xff]));
    await once(oversized, 'close');
    expect(server.stats.protocolErrors).toBe(2);
    await expect(get(a, 'after')).resolves.toBe('after');
    expect(a.closedCalls).toBe(0);
  });

  it('closes connections beyond maxConnections at once', async () => {
    const { server } = await serve({ maxConnections: 1 });
    const a = link(server.port);
    await expect(get(a, 'first')).resolves.toBe('first');
    const b = link(server.port);
    await expect(get(b, 'second')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(b.closedCalls).toBe(1);
    expect(server.stats).toMatchObject({ connections: 1, refusedConnections: 1 });
    await expect(get(a, 'still')).resolves.toBe('still');
  });

  it('closes a connection that does not read its answers', async () => {
    const { server } = await serve({ maxQueuedBytes: 1024 * 1024 });
    const reader = await rawSocket(server.port);
    reader.pause();
    const w = new BatchWriter(64);
    // 32 MiB of answers: more than the kernel's socket buffers take, so the rest queues in Node.
    for (let i = 0; i < 32; i++) w.addRequest(WireOp.get, i, bytes(`big-${i}`), null);
    reader.write(encodeFrame(w.take()));
    await vi.waitFor(() => expect(server.stats.slowClients).toBe(1));
    expect(server.stats.connections).toBe(0);
  });

  it('rejects bad options and closes a link on purpose with CLOSED', async () => {
    const mux = new ClientMux({ maxInflight: 8 });
    const base = { host, port: 0, clock: systemClock, mux, deliver: () => {} };
    await expect(KnDataServer.listen({ ...base, maxConnections: 0 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    await expect(KnDataServer.listen({ ...base, port: 70_000 })).rejects.toMatchObject({
      code: 'INVALID_OPTION',
    });
    const { server, kn } = await serve();
    const a = link(server.port);
    kn.hold = true;
    const pending = get(a, 'x');
    a.link.close();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(get(a, 'y')).rejects.toMatchObject({ code: 'CLOSED' });
    expect(a.closedCalls).toBe(0);
  });
});
