import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ActorSystem,
  TcpLink,
  TcpTransportServer,
  type ActorRef,
  type TcpLinkOptions,
  type TcpTransport,
} from '../../../src/actors/index.js';
import type { TimerHandle } from '../../../src/time/index.js';
import { counterSpec, type CounterMsg } from '../../fixtures/actors/counter.js';
import { ManualClock } from '../../fixtures/actors/manual-clock.js';

const secret = 'a cluster secret of more than sixteen bytes';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A system as if in its own process, `n0/<proc>/0`, with a counter. */
function start(proc: number): ActorSystem {
  const system = ActorSystem.start({ node: 'n0', process: proc, thread: 0, onError: () => {} });
  system.spawn('counter', counterSpec());
  cleanups.push(() => system.stop());
  return system;
}

interface Served {
  server: TcpTransportServer;
  peers: TcpTransport[];
}

async function serve(system: ActorSystem, port = 0): Promise<Served> {
  const peers: TcpTransport[] = [];
  const server = await TcpTransportServer.listen(system, {
    port,
    secret,
    onPeer: (t) => peers.push(t),
    onHandshakeError: () => {},
  });
  cleanups.push(() => server.close());
  return { server, peers };
}

/** A loopback port on which nothing listens (it was free a moment ago). */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  probe.close();
  await once(probe, 'close');
  return port;
}

interface Linked {
  link: TcpLink;
  changes: boolean[];
}

function link(system: ActorSystem, options: Partial<TcpLinkOptions> & { port: number }): Linked {
  const changes: boolean[] = [];
  const made = new TcpLink(system, {
    secret,
    retryMs: 10,
    maxRetryMs: 50,
    onChange: (up) => changes.push(up),
    ...options,
  });
  cleanups.push(() => made.close());
  return { link: made, changes };
}

function counterOf(system: ActorSystem): ActorRef<CounterMsg> {
  return system.remoteRef<CounterMsg>(`${system.address}/counter`);
}

function get(through: TcpLink, ref: ActorRef<CounterMsg>, timeoutMs = 1000): Promise<number> {
  return through.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), timeoutMs);
}

function silent(through: TcpLink, ref: ActorRef<CounterMsg>): Promise<number> {
  return through.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'silent', replyTo }), 5000);
}

function elapsedMs(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e6;
}

/** A ManualClock that remembers the delay of every timer set on it. */
class RecordingClock extends ManualClock {
  readonly delaysUs: number[] = [];

  override setTimer(delayUs: number, callback: () => void): TimerHandle {
    this.delaysUs.push(delayUs);
    return super.setTimer(delayUs, callback);
  }
}

describe('TcpLink', () => {
  it('asks through the transport once it is up', async () => {
    const a = start(1);
    const b = start(2);
    const { server, peers } = await serve(b);
    const { link: l, changes } = link(a, { port: server.port });
    await l.waitUp(1000);
    expect(l.up).toBe(true);
    expect(changes).toEqual([true]);
    expect(peers.map((t) => t.peer)).toEqual(['n0/1/0']);
    a.tell(counterOf(b), { type: 'add', by: 5 });
    await expect(get(l, counterOf(b))).resolves.toBe(5);
    // Errors the actor answers with pass through unchanged.
    await expect(
      l.ask<CounterMsg, number>(
        counterOf(b),
        (replyTo) => ({ type: 'fail', code: 'MOVED', replyTo }),
        1000,
      ),
    ).rejects.toMatchObject({ code: 'MOVED' });
    // waitUp on a link that is up resolves at once.
    await expect(l.waitUp(1)).resolves.toBeUndefined();
  });

  it('fails asks with UNAVAILABLE, not CLOSED, when the server goes away, and quickly', async () => {
    const a = start(1);
    const b = start(2);
    const { server } = await serve(b);
    const { link: l, changes } = link(a, { port: server.port });
    await l.waitUp(1000);

    // An ask waiting when the connection closes.
    const pending = silent(l, counterOf(b));
    const cutOff = expect(pending).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      retriable: true,
      message: /no connection to 127\.0\.0\.1:\d+/,
    });
    await vi.waitFor(() => expect(a.stats().pendingAsks).toBe(1));
    const started = process.hrtime.bigint();
    await server.close();
    await cutOff;
    await vi.waitFor(() => expect(changes).toEqual([true, false]));
    expect(l.up).toBe(false);

    // Asks while it is down fail at once, without waiting for their timeout.
    const down = process.hrtime.bigint();
    await expect(get(l, counterOf(b), 30_000)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(elapsedMs(down)).toBeLessThan(100);
    expect(elapsedMs(started)).toBeLessThan(1000);
    // The failed reconnect attempts do not count as changes.
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(changes).toEqual([true, false]);
  });

  it('comes back by itself when a server listens on the port again', async () => {
    const a = start(1);
    const b = start(2);
    const first = await serve(b);
    const port = first.server.port;
    const { link: l, changes } = link(a, { port });
    await l.waitUp(1000);
    a.tell(counterOf(b), { type: 'add', by: 2 });
    await expect(get(l, counterOf(b))).resolves.toBe(2);

    await first.server.close();
    await vi.waitFor(() => expect(l.up).toBe(false));
    // Let it fail a few times, so that its pause has grown to maxRetryMs.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await expect(get(l, counterOf(b))).rejects.toMatchObject({ code: 'UNAVAILABLE' });

    const second = await serve(b, port);
    const started = process.hrtime.bigint();
    await l.waitUp(1000);
    // maxRetryMs is 50, so it reconnects well within a few pauses.
    expect(elapsedMs(started)).toBeLessThan(500);
    await vi.waitFor(() => expect(second.peers).toHaveLength(1));
    await expect(get(l, counterOf(b))).resolves.toBe(2);
    expect(changes).toEqual([true, false, true]);
    expect(first.peers).toHaveLength(1);
  });

  it('reconnects after a pause that doubles up to maxRetryMs and starts over once up', async () => {
    const a = start(1);
    const b = start(2);
    const port = await freePort();
    const clock = new RecordingClock();
    const { link: l, changes } = link(a, { port, clock, retryMs: 10, maxRetryMs: 40 });
    const retries = (): number[] => clock.delaysUs.filter((us) => us <= 40_000);
    // Each failed attempt sets one retry timer; advancing past it makes the next attempt.
    for (const [i, pauseUs] of [10_000, 20_000, 40_000, 40_000].entries()) {
      await vi.waitFor(() => expect(retries()).toHaveLength(i + 1));
      expect(retries()[i]).toBe(pauseUs);
      clock.advance(pauseUs - 1);
      expect(retries()).toHaveLength(i + 1);
      clock.advance(1);
    }
    await vi.waitFor(() => expect(retries()).toHaveLength(5));
    expect(retries()[4]).toBe(40_000);
    expect(l.up).toBe(false);

    const { server } = await serve(b, port);
    clock.advance(40_000);
    await l.waitUp(1000);
    expect(changes).toEqual([true]);
    // Up again: the next pause is retryMs again.
    await server.close();
    await vi.waitFor(() => expect(retries()).toHaveLength(6));
    expect(retries()[5]).toBe(10_000);
    expect(changes).toEqual([true, false]);
  });

  it('waitUp rejects with UNAVAILABLE when nothing listens', async () => {
    const a = start(1);
    const port = await freePort();
    const { link: l, changes } = link(a, { port });
    const started = process.hrtime.bigint();
    await expect(l.waitUp(100)).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: /not connected within 100 ms/,
    });
    const took = elapsedMs(started);
    expect(took).toBeGreaterThanOrEqual(90);
    expect(took).toBeLessThan(1000);
    await expect(get(l, a.remoteRef<CounterMsg>('n0/2/0/counter'))).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(changes).toEqual([]);
  });

  it('waitUp resolves when a server starts listening later', async () => {
    const a = start(1);
    const b = start(2);
    const port = await freePort();
    const { link: l } = link(a, { port });
    const up = l.waitUp(1000);
    await new Promise((resolve) => setTimeout(resolve, 30));
    await serve(b, port);
    await up;
    await expect(get(l, counterOf(b))).resolves.toBe(0);
  });

  it('fails asks with CLOSED after close(), and stops reconnecting', async () => {
    const a = start(1);
    const b = start(2);
    const first = await serve(b);
    const port = first.server.port;
    const { link: l } = link(a, { port });
    await l.waitUp(1000);
    const pending = silent(l, counterOf(b));
    // An ask cut off by close() was shut down on purpose: CLOSED, not UNAVAILABLE.
    const cutOff = expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await vi.waitFor(() => expect(a.stats().pendingAsks).toBe(1));
    l.close();
    l.close();
    await cutOff;
    await expect(get(l, counterOf(b))).rejects.toMatchObject({ code: 'CLOSED' });
    expect(l.up).toBe(false);
    await vi.waitFor(() => expect(first.server.peers).toEqual([]));

    // Nothing reconnects: a server on the same port sees no connection.
    await first.server.close();
    const second = await serve(b, port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(second.peers).toEqual([]);
    expect(first.peers).toHaveLength(1);
  });

  it('stops retrying when closed while down', async () => {
    const a = start(1);
    const b = start(2);
    const port = await freePort();
    const { link: l, changes } = link(a, { port });
    await expect(l.waitUp(50)).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    l.close();
    await expect(get(l, counterOf(b))).rejects.toMatchObject({ code: 'CLOSED' });
    const { peers } = await serve(b, port);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(peers).toEqual([]);
    expect(changes).toEqual([]);
  });
});
