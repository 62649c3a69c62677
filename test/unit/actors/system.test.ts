import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, type ActorRef, type ReplyTo } from '../../../src/actors/index.js';
import { isDinomoError, type ErrorCode } from '../../../src/errors/index.js';
import { counterSpec, gate, type CounterMsg } from '../../fixtures/actors/counter.js';
import { ManualClock } from '../../fixtures/actors/manual-clock.js';

const systems: ActorSystem[] = [];
function start(options: Partial<Parameters<typeof ActorSystem.start>[0]> = {}): ActorSystem {
  const system = ActorSystem.start({
    node: 'n0',
    process: 0,
    thread: 1,
    onError: () => {},
    ...options,
  });
  systems.push(system);
  return system;
}
afterEach(() => {
  for (const system of systems.splice(0)) system.stop();
});

async function codeOf(promise: Promise<unknown>): Promise<ErrorCode> {
  try {
    await promise;
  } catch (err) {
    if (isDinomoError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a rejection');
}

function get(system: ActorSystem, ref: ActorRef<CounterMsg>, timeoutMs = 1000): Promise<number> {
  return system.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), timeoutMs);
}

/** Never run: tsc checks the @ts-expect-error lines (npm run typecheck covers test files). */
function typeChecks(system: ActorSystem, counter: ActorRef<CounterMsg>): void {
  // @ts-expect-error: 'nope' is not a CounterMsg.
  system.tell(counter, { type: 'nope' });
  // @ts-expect-error: 'add' needs `by`.
  system.tell(counter, { type: 'add' });
  // @ts-expect-error: 'get' answers a number, so its ReplyTo cannot carry a string.
  void system.ask<CounterMsg, string>(counter, (replyTo) => ({ type: 'get', replyTo }), 10);
  const answer: Promise<number> = system.ask(
    counter,
    (replyTo: ReplyTo<number>) => ({ type: 'get' as const, replyTo }),
    10,
  );
  void answer;
  // A ref accepting more messages may stand in for one accepting fewer, never the reverse.
  const adder: ActorRef<{ type: 'add'; by: number }> = counter;
  // @ts-expect-error: an adder does not accept 'get'.
  const notCounter: ActorRef<CounterMsg> = adder;
  void notCounter;
  system.spawn<number, CounterMsg>('typed', {
    initialState: 0,
    handle: (state, msg, ctx) => {
      // @ts-expect-error: the answer to 'get' is a number.
      if (msg.type === 'get') ctx.reply(msg.replyTo, 'x');
      return state;
    },
  });
}

describe('ActorSystem', () => {
  it('spawns typed actors, tells and asks', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec());
    expect(counter.address).toBe('n0/0/1/counter');
    expect(system.address).toBe('n0/0/1');
    expect(system.tell(counter, { type: 'add', by: 2 })).toBe(true);
    expect(system.tell(counter, { type: 'add', by: 3 })).toBe(true);
    await expect(get(system, counter)).resolves.toBe(5);
    expect(system.stats()).toMatchObject({ actors: 1, pendingAsks: 0, dropped: 0, timeouts: 0 });
    expect(typeof typeChecks).toBe('function');
  });

  it('runs synchronous handlers and keeps message order', async () => {
    type LogMsg = { type: 'push'; item: number } | { type: 'list'; replyTo: ReplyTo<number[]> };
    const system = start();
    const log = system.spawn<number[], LogMsg>('log', {
      initialState: [],
      handle(state, msg, ctx) {
        if (msg.type === 'push') return [...state, msg.item];
        ctx.reply(msg.replyTo, state);
        return state;
      },
    });
    for (let i = 0; i < 100; i++) system.tell(log, { type: 'push', item: i });
    const items = await system.ask<LogMsg, number[]>(
      log,
      (replyTo) => ({ type: 'list', replyTo }),
      1000,
    );
    expect(items).toEqual([...Array(100).keys()]);
  });

  it('answers with errors as DinomoErrors carrying the code', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec());
    const answer = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'fail', code: 'MOVED', replyTo }),
      1000,
    );
    await expect(answer).rejects.toMatchObject({ code: 'MOVED', retriable: true, origin: 'local' });
  });

  it('times out an unanswered ask with TIMEOUT', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec());
    const silent = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'silent', replyTo }),
      20,
    );
    await expect(silent).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(system.stats()).toMatchObject({ timeouts: 1, pendingAsks: 0 });
  });

  it('drives ask timeouts from the injected clock', async () => {
    const clock = new ManualClock();
    const system = start({ clock });
    const counter = system.spawn('counter', counterSpec());
    let settled = false;
    const silent = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'silent', replyTo }),
      50,
    );
    silent.catch(() => {}).finally(() => (settled = true));
    await get(system, counter);
    expect(settled).toBe(false);
    expect(clock.liveTimers).toBe(1); // the answered ask cancelled its own timer
    clock.advance(49_999);
    await Promise.resolve();
    expect(settled).toBe(false);
    clock.advance(1);
    await expect(silent).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(clock.liveTimers).toBe(0);
  });

  it('requires a positive finite timeout and sends nothing without one', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec());
    let made = 0;
    for (const timeout of [
      0,
      -5,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      2 ** 31,
      undefined as unknown as number,
    ]) {
      const answer = system.ask<CounterMsg, number>(
        counter,
        (replyTo) => (made++, { type: 'get', replyTo }),
        timeout,
      );
      expect(await codeOf(answer)).toBe('INVALID_OPTION');
    }
    expect(made).toBe(0);
    await expect(get(system, counter, 1000)).resolves.toBe(0);
  });

  it('fails an ask to an unknown actor at once, and a tell returns false', async () => {
    const system = start();
    const ghost = system.remoteRef<CounterMsg>('n0/0/1/ghost');
    const startedAt = performance.now();
    await expect(get(system, ghost, 10_000)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(performance.now() - startedAt).toBeLessThan(1000);
    await expect(get(system, ghost)).rejects.toThrow(/no actor n0\/0\/1\/ghost/);
    expect(system.tell(ghost, { type: 'add', by: 1 })).toBe(false);
    expect(system.stats().undeliverable).toBe(1);
  });

  it('reaches local actors through remoteRef with the local address', async () => {
    const system = start();
    system.spawn('counter', counterSpec());
    const byAddress = system.remoteRef<CounterMsg>('n0/0/1/counter');
    system.tell(byAddress, { type: 'add', by: 7 });
    await expect(get(system, byAddress)).resolves.toBe(7);
    expect(() => system.remoteRef('n0/0/counter')).toThrow(/not an actor address/);
  });

  it('bounds pending asks with OVERLOADED', async () => {
    const system = start({ pendingAsksMax: 2 });
    const counter = system.spawn('counter', counterSpec());
    const silent = (): Promise<number> =>
      system.ask<CounterMsg, number>(counter, (replyTo) => ({ type: 'silent', replyTo }), 30);
    const first = silent();
    const second = silent();
    expect(await codeOf(silent())).toBe('OVERLOADED');
    expect(await codeOf(first)).toBe('TIMEOUT');
    expect(await codeOf(second)).toBe('TIMEOUT');
    await expect(get(system, counter)).resolves.toBe(0);
  });

  it('checks names and options', () => {
    const system = start();
    system.spawn('counter', counterSpec());
    expect(() => system.spawn('counter', counterSpec())).toThrow(/already exists/);
    expect(() => system.spawn('a/b', counterSpec())).toThrow(/actor name/);
    expect(() => system.spawn('', counterSpec())).toThrow(/actor name/);
    expect(() => system.spawn('big', counterSpec({ mailboxMax: 0 }))).toThrow(/mailboxMax/);
    expect(() => start({ thread: 'a/b' })).toThrow(/thread/);
    expect(() => start({ pendingAsksMax: 1.5 })).toThrow(/pendingAsksMax/);
  });

  it('stopActor fails the asks still queued and frees the name', async () => {
    const system = start();
    const hold = gate();
    const counter = system.spawn('counter', counterSpec({ gate: hold }));
    const held = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'hold', replyTo }),
      1000,
    );
    await new Promise((resolve) => setImmediate(resolve)); // nact has started 'hold'
    const queued = get(system, counter);
    expect(system.stopActor(counter)).toBe(true);
    await expect(queued).rejects.toThrow(/stopped before answering/);
    hold.open();
    await expect(held).resolves.toBe(0); // the message in progress still finishes
    await expect(get(system, counter)).rejects.toThrow(/no actor/);
    expect(system.stopActor(counter)).toBe(false);
    const again = system.spawn('counter', counterSpec());
    await expect(get(system, again)).resolves.toBe(0);
  });

  it('stop fails pending asks with CLOSED and refuses further work', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec());
    const silent = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'silent', replyTo }),
      10_000,
    );
    system.stop();
    await expect(silent).rejects.toMatchObject({ code: 'CLOSED' });
    expect(system.tell(counter, { type: 'add', by: 1 })).toBe(false);
    expect(await codeOf(get(system, counter))).toBe('CLOSED');
    expect(() => system.spawn('other', counterSpec())).toThrow(/stopped/);
    system.stop();
  });

  it('counts answers that come after the ask is over', async () => {
    const clock = new ManualClock();
    const system = start({ clock });
    let kept: ReplyTo<number> | undefined;
    type Msg = { type: 'keep'; replyTo: ReplyTo<number> };
    const keeper = system.spawn<null, Msg>('keeper', {
      initialState: null,
      handle: (state, msg) => ((kept = msg.replyTo), state),
    });
    const answer = system.ask<Msg, number>(keeper, (replyTo) => ({ type: 'keep', replyTo }), 10);
    while (!kept) await new Promise((resolve) => setImmediate(resolve));
    clock.advance(10_000);
    expect(await codeOf(answer)).toBe('TIMEOUT');
    system.reply(kept, 1);
    expect(system.stats().lateReplies).toBe(1);
  });
});
