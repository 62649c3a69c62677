import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ActorSystem,
  PortTransport,
  type ActorFault,
  type ActorRef,
} from '../../../src/actors/index.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { counterSpec, gate, type CounterMsg, type Gate } from '../../fixtures/actors/counter.js';

interface Pair {
  a: ActorSystem;
  b: ActorSystem;
  /** A ref, held by system a, to the counter in system b. */
  remote: ActorRef<CounterMsg>;
  faultsA: ActorFault[];
  faultsB: ActorFault[];
  channel: MessageChannel;
  hold: Gate;
}

const systems: ActorSystem[] = [];
afterEach(() => {
  for (const system of systems.splice(0)) system.stop();
});

/** Two systems, as if in two threads, joined by one MessageChannel in this thread. */
function pair(mailboxMax?: number): Pair {
  const faultsA: ActorFault[] = [];
  const faultsB: ActorFault[] = [];
  const a = ActorSystem.start({
    node: 'n0',
    process: 7,
    thread: 1,
    onError: (f) => faultsA.push(f),
  });
  const b = ActorSystem.start({
    node: 'n0',
    process: 7,
    thread: 2,
    onError: (f) => faultsB.push(f),
  });
  systems.push(a, b);
  const channel = new MessageChannel();
  new PortTransport(a, channel.port1, b.address);
  new PortTransport(b, channel.port2, a.address);
  const hold = gate();
  b.spawn(
    'counter',
    counterSpec({ onCrash: 'resume', gate: hold, ...(mailboxMax && { mailboxMax }) }),
  );
  return {
    a,
    b,
    remote: a.remoteRef<CounterMsg>('n0/7/2/counter'),
    faultsA,
    faultsB,
    channel,
    hold,
  };
}

function get(system: ActorSystem, ref: ActorRef<CounterMsg>, timeoutMs = 2000): Promise<number> {
  return system.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), timeoutMs);
}

describe('PortTransport', () => {
  it('carries tells and asks between two systems, both ways', async () => {
    const { a, b, remote } = pair();
    expect(a.tell(remote, { type: 'add', by: 4 })).toBe(true);
    expect(a.tell(remote, { type: 'add', by: 5 })).toBe(true);
    await expect(get(a, remote)).resolves.toBe(9);
    a.spawn('counter', counterSpec());
    const back = b.remoteRef<CounterMsg>('n0/7/1/counter');
    b.tell(back, { type: 'add', by: 1 });
    await expect(get(b, back)).resolves.toBe(1);
    expect(a.stats().pendingAsks).toBe(0);
  });

  it('carries refs inside messages, so the receiver can answer by tell', async () => {
    const { a, remote } = pair();
    const local = a.spawn('local', counterSpec());
    a.tell(remote, { type: 'pingBack', to: local, by: 3 });
    for (let i = 0; i < 100 && (await get(a, local)) === 0; i++)
      await new Promise((r) => setTimeout(r, 5));
    await expect(get(a, local)).resolves.toBe(3);
  });

  it('round-trips plain data through cbor-x', async () => {
    const { a, remote } = pair();
    const value = {
      bytes: new Uint8Array([0, 1, 254, 255]),
      big: 2n ** 70n,
      map: new Map([['k', [1, 2]]]),
      nested: { list: ['x', null, true, 1.5, -3] },
    };
    const echoed = await a.ask<CounterMsg, unknown>(
      remote,
      (replyTo) => ({ type: 'echo', value, replyTo }),
      2000,
    );
    expect(echoed).toEqual(value);
    const none = await a.ask<CounterMsg, unknown>(
      remote,
      (replyTo) => ({ type: 'echo', value: undefined, replyTo }),
      2000,
    );
    expect(none).toBeUndefined();
  });

  it('turns error answers into DinomoErrors with the same code', async () => {
    const { a, remote } = pair();
    const answer = a.ask<CounterMsg, number>(
      remote,
      (replyTo) => ({ type: 'fail', code: 'TRYAGAIN', replyTo }),
      2000,
    );
    const err: unknown = await answer.catch((e: unknown) => e);
    expect(isDinomoError(err)).toBe(true);
    expect(err).toMatchObject({ code: 'TRYAGAIN', retriable: true, origin: 'remote' });
    expect(String((err as Error).message)).toMatch(/^TRYAGAIN: asked to fail/);
  });

  it('fails an ask to an unknown remote actor quickly with INTERNAL', async () => {
    const { a } = pair();
    const ghost = a.remoteRef<CounterMsg>('n0/7/2/ghost');
    const startedAt = performance.now();
    await expect(get(a, ghost, 10_000)).rejects.toMatchObject({
      code: 'INTERNAL',
      origin: 'remote',
    });
    expect(performance.now() - startedAt).toBeLessThan(1000);
    await expect(get(a, ghost, 10_000)).rejects.toThrow(/no actor n0\/7\/2\/ghost/);
  });

  it('fails at once when no transport reaches the system', async () => {
    const { a } = pair();
    const far = a.remoteRef<CounterMsg>('n9/0/0/counter');
    await expect(get(a, far, 10_000)).rejects.toThrow(/no route/);
    expect(a.tell(far, { type: 'add', by: 1 })).toBe(false);
    expect(a.stats().undeliverable).toBe(1);
    const malformed: ActorRef<CounterMsg> = { address: 'n0/7/2' };
    expect(a.tell(malformed, { type: 'add', by: 1 })).toBe(false);
    await expect(get(a, malformed, 10_000)).rejects.toThrow(/no route/);
  });

  it('answers OVERLOADED when the remote mailbox is full', async () => {
    const { a, remote, hold } = pair(1);
    const held = a.ask<CounterMsg, number>(remote, (replyTo) => ({ type: 'hold', replyTo }), 2000);
    await expect(get(a, remote)).rejects.toMatchObject({ code: 'OVERLOADED', origin: 'remote' });
    hold.open();
    await expect(held).resolves.toBe(0);
  });

  it('fails the ask whose remote handler crashed, and reports the crash there', async () => {
    const { a, remote, faultsB } = pair();
    const crashed = a.ask<CounterMsg, number>(
      remote,
      (replyTo) => ({ type: 'boomAsk', replyTo }),
      10_000,
    );
    await expect(crashed).rejects.toThrow(/crashed handling 'boomAsk'/);
    expect(faultsB).toMatchObject([{ kind: 'crash', address: 'n0/7/2/counter', action: 'resume' }]);
  });

  it('fails pending asks with CLOSED when the channel closes', async () => {
    const { a, b, remote, channel } = pair();
    const silent = a.ask<CounterMsg, number>(
      remote,
      (replyTo) => ({ type: 'silent', replyTo }),
      10_000,
    );
    await get(a, remote);
    channel.port2.close();
    await expect(silent).rejects.toMatchObject({ code: 'CLOSED' });
    expect(a.tell(remote, { type: 'add', by: 1 })).toBe(false);
    expect(b.tell(b.remoteRef<CounterMsg>('n0/7/1/x'), { type: 'add', by: 1 })).toBe(false);
  });

  it('fails asks to a stopped peer with CLOSED', async () => {
    const { a, b, remote } = pair();
    const silent = a.ask<CounterMsg, number>(
      remote,
      (replyTo) => ({ type: 'silent', replyTo }),
      10_000,
    );
    await get(a, remote);
    b.stop();
    await expect(silent).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('reports frames that do not decode, and keeps working', async () => {
    const { a, remote, channel, faultsA } = pair();
    channel.port2.postMessage(new Uint8Array([0xff, 0x00]));
    channel.port2.postMessage('not bytes');
    a.tell(remote, { type: 'add', by: 2 });
    await expect(get(a, remote)).resolves.toBe(2);
    expect(faultsA.map((f) => f.kind)).toEqual(['transport', 'transport']);
    expect(String(faultsA[0]?.error)).toMatch(/malformed actor frame/);
  });

  it('rejects a message that cannot be encoded, without a timeout', async () => {
    const { a, remote, faultsA } = pair();
    const value = { f: () => 1 };
    const answer = a.ask<CounterMsg, unknown>(
      remote,
      (replyTo) => ({ type: 'echo', value, replyTo }),
      10_000,
    );
    await expect(answer).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(a.tell(remote, { type: 'echo', value, replyTo: { system: a.address, askId: 0 } })).toBe(
      false,
    );
    expect(faultsA.map((f) => f.kind)).toEqual(['transport', 'transport']);
  });

  it('refuses a second transport to the same peer, or one to itself', () => {
    const { a, b } = pair();
    const channel = new MessageChannel();
    expect(() => new PortTransport(a, channel.port1, b.address)).toThrow(/already has a transport/);
    expect(() => new PortTransport(a, channel.port1, a.address)).toThrow(/another system/);
    channel.port1.close();
  });
});
