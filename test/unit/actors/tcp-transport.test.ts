import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ActorSystem,
  TcpTransportServer,
  connectTcpTransport,
  encodeEnvelope,
  maxFrameBytes,
  type ActorFault,
  type ActorRef,
  type TcpTransport,
  type TcpTransportServerOptions,
  maxQueuedBytes,
} from '../../../src/actors/index.js';
import { encodeFrame, FrameReader } from '../../../src/actors/frame-reader.js';
import {
  decodeHandshake,
  encodeHandshake,
  handshakeProof,
  handshakeVersion,
  type HandshakeMessage,
} from '../../../src/actors/tcp-handshake.js';
import type { DinomoError } from '../../../src/errors/index.js';
import { counterSpec, type CounterMsg } from '../../fixtures/actors/counter.js';
import { ManualClock } from '../../fixtures/actors/manual-clock.js';

const secret = 'a cluster secret of more than sixteen bytes';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Sys {
  system: ActorSystem;
  faults: ActorFault[];
}

/** A system as if in its own process, `n0/<proc>/0`, with a counter and its faults recorded. */
function start(proc: number): Sys {
  const faults: ActorFault[] = [];
  const system = ActorSystem.start({
    node: 'n0',
    process: proc,
    thread: 0,
    onError: (f) => faults.push(f),
  });
  system.spawn('counter', counterSpec());
  cleanups.push(() => system.stop());
  return { system, faults };
}

interface Served {
  server: TcpTransportServer;
  peers: TcpTransport[];
  refusals: DinomoError[];
}

async function serve(
  system: ActorSystem,
  options: Partial<TcpTransportServerOptions> = {},
): Promise<Served> {
  const peers: TcpTransport[] = [];
  const refusals: DinomoError[] = [];
  const server = await TcpTransportServer.listen(system, {
    port: 0,
    secret,
    onPeer: (t) => peers.push(t),
    onHandshakeError: (e) => refusals.push(e),
    ...options,
  });
  cleanups.push(() => server.close());
  return { server, peers, refusals };
}

function counterOf(system: ActorSystem): ActorRef<CounterMsg> {
  return system.remoteRef<CounterMsg>(`${system.address}/counter`);
}

function get(from: ActorSystem, ref: ActorRef<CounterMsg>, timeoutMs = 5000): Promise<number> {
  return from.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), timeoutMs);
}

function silent(from: ActorSystem, ref: ActorRef<CounterMsg>): Promise<number> {
  return from.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'silent', replyTo }), 30_000);
}

/** A frame holding a tell of `add 1` to the counter of n0/2/0, claiming to come from `from`. */
function addFrame(from: string): Buffer {
  const body: CounterMsg = { type: 'add', by: 1 };
  return encodeFrame(encodeEnvelope({ kind: 'msg', to: 'n0/2/0/counter', from, replyId: 0, body }));
}

/** A raw loopback socket, its frames read into a queue. */
class RawPeer {
  readonly socket: Socket;
  private readonly reader = new FrameReader(maxFrameBytes);
  private wake: () => void = () => {};
  private ended = false;
  readonly closed: Promise<void>;

  constructor(port: number) {
    this.socket = connect({ host: '127.0.0.1', port });
    this.socket.on('error', () => {});
    this.socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.wake();
    });
    this.closed = once(this.socket, 'close').then(() => {
      this.ended = true;
      this.wake();
    });
  }

  /** The next handshake message, or undefined if it is malformed or the socket closed first. */
  async nextHandshake(): Promise<HandshakeMessage | undefined> {
    for (;;) {
      const frame = this.reader.next();
      if (frame) return decodeHandshake(frame);
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  /** Plays the connector's side of the handshake with `key`, as the system at `from`. */
  async handshake(from: string, key = secret): Promise<HandshakeMessage | undefined> {
    const nonce = randomBytes(32);
    this.send({ kind: 'hello', version: handshakeVersion, from, nonce });
    const challenge = await this.nextHandshake();
    if (challenge?.kind !== 'challenge') throw new Error('expected a challenge');
    const transcript = {
      connector: from,
      acceptor: challenge.from,
      connectorNonce: nonce,
      acceptorNonce: challenge.nonce,
    };
    const proof = handshakeProof(Buffer.from(key), 'connector', transcript);
    this.send({ kind: 'proof', proof });
    return this.nextHandshake();
  }

  send(message: HandshakeMessage): void {
    this.socket.write(encodeFrame(encodeHandshake(message)));
  }
}

describe('TcpTransport', () => {
  it('carries tells and asks between two systems over loopback, both ways', async () => {
    const a = start(1);
    const b = start(2);
    const { server, peers } = await serve(b.system);
    const transport = await connectTcpTransport(a.system, { port: server.port, secret });
    expect(transport.peer).toBe('n0/2/0');
    await vi.waitFor(() => expect(peers).toHaveLength(1));
    expect(peers[0]?.peer).toBe('n0/1/0');
    expect(server.peers).toEqual(['n0/1/0']);

    expect(a.system.tell(counterOf(b.system), { type: 'add', by: 4 })).toBe(true);
    await expect(get(a.system, counterOf(b.system))).resolves.toBe(4);
    b.system.tell(counterOf(a.system), { type: 'add', by: 7 });
    await expect(get(b.system, counterOf(a.system))).resolves.toBe(7);

    const value = { bytes: new Uint8Array([0, 255]), big: 2n ** 70n, map: new Map([['k', 1]]) };
    const echoed = await a.system.ask<CounterMsg, unknown>(
      counterOf(b.system),
      (replyTo) => ({ type: 'echo', value, replyTo }),
      5000,
    );
    expect(echoed).toEqual(value);
    await expect(
      a.system.ask<CounterMsg, number>(
        counterOf(b.system),
        (replyTo) => ({ type: 'fail', code: 'MOVED', replyTo }),
        5000,
      ),
    ).rejects.toMatchObject({ code: 'MOVED', origin: 'remote' });
    expect(a.faults).toEqual([]);
    expect(b.faults).toEqual([]);
  });

  it('answers 2,000 pipelined asks, in the order they were sent', async () => {
    const a = start(1);
    const b = start(2);
    const { server } = await serve(b.system);
    await connectTcpTransport(a.system, { port: server.port, secret });
    const remote = counterOf(b.system);
    const answers: Promise<number>[] = [];
    for (let i = 0; i < 2000; i++) {
      a.system.tell(remote, { type: 'add', by: 1 });
      answers.push(get(a.system, remote, 20_000));
    }
    const got = await Promise.all(answers);
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
  });

  it('carries a frame of several hundred KiB, and refuses one above the limit without closing', async () => {
    const a = start(1);
    const b = start(2);
    const { server } = await serve(b.system);
    const transport = await connectTcpTransport(a.system, { port: server.port, secret });
    const echo = (value: unknown): Promise<unknown> =>
      a.system.ask<CounterMsg, unknown>(
        counterOf(b.system),
        (replyTo) => ({ type: 'echo', value, replyTo }),
        10_000,
      );
    const big = randomBytes(700_000);
    expect(Buffer.from((await echo(big)) as Uint8Array).equals(big)).toBe(true);
    await expect(echo(new Uint8Array(maxFrameBytes + 1))).rejects.toThrow(/frame limit|limit/);
    expect(transport.isOpen).toBe(true);
    await expect(get(a.system, counterOf(b.system))).resolves.toBe(0);
  });

  it('fails asks waiting on a peer with CLOSED when either side closes', async () => {
    const a = start(1);
    const b = start(2);
    const { server, peers } = await serve(b.system);
    const transport = await connectTcpTransport(a.system, { port: server.port, secret });
    await vi.waitFor(() => expect(peers).toHaveLength(1));
    const accepted = peers[0];
    if (!accepted) throw new Error('no peer');

    // The acceptor closes: the connector's ask fails.
    const fromA = expect(silent(a.system, counterOf(b.system))).rejects.toMatchObject({
      code: 'CLOSED',
    });
    const fromB = expect(silent(b.system, counterOf(a.system))).rejects.toMatchObject({
      code: 'CLOSED',
    });
    await vi.waitFor(() => expect(a.system.stats().pendingAsks).toBe(1));
    accepted.close();
    accepted.close();
    await fromA;
    await fromB;
    await transport.closed;
    expect(transport.isOpen).toBe(false);
    expect(transport.send({ kind: 'reply', to: 'n0/2/0', from: 'n0/1/0', replyId: 1 })).toBe(false);
    await expect(get(a.system, counterOf(b.system))).rejects.toThrow(/no route/);

    // Connect again, and this time the connector closes.
    const again = await connectTcpTransport(a.system, { port: server.port, secret });
    await vi.waitFor(() => expect(server.peers).toEqual(['n0/1/0']));
    const pending = silent(b.system, counterOf(a.system));
    await vi.waitFor(() => expect(b.system.stats().pendingAsks).toBe(1));
    again.close();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await vi.waitFor(() => expect(server.peers).toEqual([]));
  });

  it('closes its transports when the system stops', async () => {
    const a = start(1);
    const b = start(2);
    const { server } = await serve(b.system);
    await connectTcpTransport(a.system, { port: server.port, secret });
    const pending = silent(a.system, counterOf(b.system));
    await vi.waitFor(() => expect(a.system.stats().pendingAsks).toBe(1));
    b.system.stop();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('refuses a second transport between the same two systems', async () => {
    const a = start(1);
    const b = start(2);
    const { server, refusals } = await serve(b.system);
    await connectTcpTransport(a.system, { port: server.port, secret });
    await vi.waitFor(() => expect(server.peers).toHaveLength(1));
    await expect(
      connectTcpTransport(a.system, { port: server.port, secret }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION', message: /already has a transport/ });
    expect(refusals.map((e) => e.code)).toEqual(['INVALID_OPTION']);
    await expect(get(a.system, counterOf(b.system))).resolves.toBe(0);
  });
});

describe('TcpTransport handshake', () => {
  it('rejects a wrong secret with UNAUTHORIZED and attaches nothing on either side', async () => {
    const a = start(1);
    const b = start(2);
    const { server, peers, refusals } = await serve(b.system);
    const wrong = connectTcpTransport(a.system, {
      port: server.port,
      secret: 'another secret, also long enough',
    });
    await expect(wrong).rejects.toMatchObject({ code: 'UNAUTHORIZED', retriable: false });
    await expect(wrong).rejects.toThrow(/does not hold this cluster's secret/);
    await vi.waitFor(() => expect(refusals).toHaveLength(1));
    expect(refusals[0]?.code).toBe('UNAUTHORIZED');
    expect(peers).toEqual([]);
    await expect(get(a.system, counterOf(b.system))).rejects.toThrow(/no route/);
    await expect(get(b.system, counterOf(a.system))).rejects.toThrow(/no route/);
    // Nothing was left half-attached: the right secret still connects.
    await connectTcpTransport(a.system, { port: server.port, secret });
    await expect(get(a.system, counterOf(b.system))).resolves.toBe(0);
  });

  it('refuses a connector that fails the acceptor check, delivering nothing', async () => {
    const b = start(2);
    const { server, refusals } = await serve(b.system);
    const raw = new RawPeer(server.port);
    // The raw peer skips the acceptor's proof and sends a proof made with the wrong key.
    const answer = await raw.handshake('n0/9/0', 'the wrong key, long enough too');
    expect(answer).toBeUndefined();
    await raw.closed;
    expect(refusals.map((e) => e.code)).toEqual(['UNAUTHORIZED']);
    expect(server.peers).toEqual([]);
  });

  it('rejects options that cannot work, saying what to do', async () => {
    const a = start(1);
    await expect(connectTcpTransport(a.system, { port: 1, secret: 'short' })).rejects.toThrow(
      /INVALID_OPTION: secret is 5 bytes; use at least 16 random bytes/,
    );
    await expect(
      TcpTransportServer.listen(a.system, { port: 0, secret: new Uint8Array(15) }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    const bad = [
      { port: 0, secret },
      { port: 70_000, secret },
      { port: 1, secret, handshakeTimeoutMs: 0 },
      { port: 1, secret, expectedPeer: 'not-an-address' },
      { port: 1, secret, host: '' },
    ];
    for (const options of bad) {
      await expect(connectTcpTransport(a.system, options)).rejects.toMatchObject({
        code: 'INVALID_OPTION',
      });
    }
  });

  it('closes a socket that sends garbage instead of a hello, delivering nothing', async () => {
    const b = start(2);
    const { server, refusals } = await serve(b.system);
    for (const garbage of [
      Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('hello')]),
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      addFrame('n0/9/0'),
    ]) {
      const raw = new RawPeer(server.port);
      raw.socket.write(garbage);
      await raw.closed;
    }
    expect(refusals.map((e) => e.code)).toEqual(['UNAUTHORIZED', 'UNAUTHORIZED', 'UNAUTHORIZED']);
    expect(server.peers).toEqual([]);
    await expect(get(b.system, counterOf(b.system))).resolves.toBe(0);
    expect(b.system.stats().undeliverable).toBe(0);
  });

  it('closes the connection on an oversized frame after the handshake, as a fault', async () => {
    const b = start(2);
    const { server, peers } = await serve(b.system);
    const raw = new RawPeer(server.port);
    expect(await raw.handshake('n0/9/0')).toEqual({ kind: 'ready' });
    await vi.waitFor(() => expect(peers).toHaveLength(1));
    // An envelope that claims another sender is dropped; one from the peer is delivered.
    raw.socket.write(Buffer.concat([addFrame('n0/8/0'), addFrame('n0/9/0')]));
    await vi.waitFor(() => expect(b.faults).toHaveLength(1));
    expect(String(b.faults[0]?.error)).toMatch(/envelope from n0\/8\/0/);
    await vi.waitFor(async () => expect(await get(b.system, counterOf(b.system))).toBe(1));

    raw.socket.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    await raw.closed;
    await peers[0]?.closed;
    expect(b.faults).toHaveLength(2);
    expect(b.faults[1]).toMatchObject({ kind: 'transport', address: 'n0/9/0' });
    expect(String(b.faults[1]?.error)).toMatch(/above the 4194304-byte limit/);
    expect(server.peers).toEqual([]);
  });

  it('refuses to queue more than maxQueuedBytes for a peer that does not read', async () => {
    const b = start(2);
    const { server, peers } = await serve(b.system);
    const raw = new RawPeer(server.port);
    expect(await raw.handshake('n0/9/0')).toEqual({ kind: 'ready' });
    await vi.waitFor(() => expect(peers).toHaveLength(1));
    raw.socket.pause();
    // Frames sent in one tick stay corked in the socket, so the count does not depend on the kernel.
    const far = b.system.remoteRef<CounterMsg>('n0/9/0/counter');
    const value = new Uint8Array(1024 * 1024);
    let sent = 0;
    while (
      sent < 100 &&
      b.system.tell(far, { type: 'echo', value, replyTo: { system: 'x', askId: 1 } })
    )
      sent++;
    // Each frame is a little over 1 MiB, so after 16 of them the queue is past its 16 MiB bound.
    expect(maxQueuedBytes).toBe(16 * value.length);
    expect(sent).toBe(16);
    // An ask fails with OVERLOADED (retriable), not CLOSED: the connection itself is fine.
    await expect(
      b.system.ask<CounterMsg, unknown>(far, (replyTo) => ({ type: 'echo', value, replyTo }), 1000),
    ).rejects.toMatchObject({ code: 'OVERLOADED' });
    expect(peers[0]?.isOpen).toBe(true);
    raw.socket.destroy();
    await peers[0]?.closed;
  });

  it('closes a silent socket when the handshake deadline passes on the injected clock', async () => {
    const b = start(2);
    const clock = new ManualClock();
    const { server, refusals } = await serve(b.system, { clock, handshakeTimeoutMs: 250 });
    const raw = new RawPeer(server.port);
    await vi.waitFor(() => expect(clock.liveTimers).toBe(1));
    clock.advance(249_000);
    expect(clock.liveTimers).toBe(1);
    clock.advance(1_000);
    await raw.closed;
    expect(refusals.map((e) => e.message)).toEqual([
      expect.stringMatching(/did not finish within 250 ms/),
    ]);
  });

  it('gives up on a silent acceptor after the deadline, and on a closed port', async () => {
    const a = start(1);
    // It accepts connections and never reads from them, so it closes them itself.
    const accepted: Socket[] = [];
    const mute = createServer((socket) => accepted.push(socket));
    mute.listen(0, '127.0.0.1');
    await once(mute, 'listening');
    const address = mute.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    await expect(
      connectTcpTransport(a.system, { port, secret, handshakeTimeoutMs: 100 }),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: /did not finish within 100 ms/ });
    mute.close();
    for (const socket of accepted) socket.destroy();
    await once(mute, 'close');
    await expect(connectTcpTransport(a.system, { port, secret })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });

  it('rejects a peer that is not the expected one', async () => {
    const a = start(1);
    const b = start(2);
    const { server } = await serve(b.system);
    await expect(
      connectTcpTransport(a.system, { port: server.port, secret, expectedPeer: 'n0/3/0' }),
    ).rejects.toMatchObject({ code: 'UNAUTHORIZED', message: /expected n0\/3\/0.*found n0\/2\/0/ });
    await connectTcpTransport(a.system, { port: server.port, secret, expectedPeer: 'n0/2/0' });
  });
});

describe('TcpTransport across a real process', () => {
  it('fails asks waiting on a peer process with CLOSED when it is killed', async () => {
    const a = start(1);
    const { server, peers } = await serve(a.system);
    const script = fileURLToPath(new URL('./tcp-peer-process.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, DINOMO_TEST_PORT: String(server.port), DINOMO_TEST_SECRET: secret },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanups.push(() => child.kill('SIGKILL'));
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const peer = /^ready (\S+)/.exec(line.toString())?.[1] ?? '';
    expect(peers.map((t) => t.peer)).toEqual([peer]);
    const remote = a.system.remoteRef<CounterMsg>(`${peer}/counter`);
    a.system.tell(remote, { type: 'add', by: 3 });
    await expect(get(a.system, remote)).resolves.toBe(3);

    const pending = silent(a.system, remote);
    child.kill('SIGKILL');
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    expect(server.peers).toEqual([]);
  });
});
