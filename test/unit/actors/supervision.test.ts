import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  ActorSystem,
  type ActorFault,
  type ActorRef,
  type CrashAction,
} from '../../../src/actors/index.js';
import { counterSpec, type CounterMsg } from '../../fixtures/actors/counter.js';

const systems: ActorSystem[] = [];
afterEach(() => {
  for (const system of systems.splice(0)) system.stop();
  vi.restoreAllMocks();
});

function setup(onCrash?: CrashAction): {
  system: ActorSystem;
  counter: ActorRef<CounterMsg>;
  faults: ActorFault[];
} {
  const faults: ActorFault[] = [];
  const system = ActorSystem.start({
    node: 'n0',
    process: 0,
    thread: 1,
    onError: (f) => faults.push(f),
  });
  systems.push(system);
  const counter = system.spawn('counter', counterSpec(onCrash === undefined ? {} : { onCrash }));
  return { system, counter, faults };
}

function get(system: ActorSystem, ref: ActorRef<CounterMsg>): Promise<number> {
  return system.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), 1000);
}

describe('supervision', () => {
  it('resume keeps the state and reports the crash', async () => {
    const { system, counter, faults } = setup('resume');
    system.tell(counter, { type: 'add', by: 5 });
    system.tell(counter, { type: 'boom' });
    system.tell(counter, { type: 'add', by: 1 });
    await expect(get(system, counter)).resolves.toBe(6);
    expect(faults).toHaveLength(1);
    expect(faults[0]).toMatchObject({
      kind: 'crash',
      address: 'n0/0/1/counter',
      messageType: 'boom',
      action: 'resume',
    });
    expect(String(faults[0]?.error)).toMatch(/boom at 5/);
    expect(system.stats().crashes).toBe(1);
  });

  it('reset restores the initial state', async () => {
    const { system, counter, faults } = setup('reset');
    system.tell(counter, { type: 'add', by: 5 });
    system.tell(counter, { type: 'boom' });
    system.tell(counter, { type: 'add', by: 1 });
    await expect(get(system, counter)).resolves.toBe(1);
    expect(faults.map((f) => f.action)).toEqual(['reset']);
  });

  it('stop (the default) stops the actor and fails the asks queued behind the crash', async () => {
    const { system, counter, faults } = setup();
    system.tell(counter, { type: 'add', by: 5 });
    system.tell(counter, { type: 'boom' });
    const queued = get(system, counter);
    await expect(queued).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(queued).rejects.toThrow(/stopped before answering/);
    await expect(get(system, counter)).rejects.toThrow(/no actor n0\/0\/1\/counter/);
    expect(system.tell(counter, { type: 'add', by: 1 })).toBe(false);
    expect(faults.map((f) => f.action)).toEqual(['stop']);
    expect(system.stats().actors).toBe(0);
  });

  it('fails the ask whose handler crashed instead of letting it time out', async () => {
    const { system, counter, faults } = setup('resume');
    const startedAt = performance.now();
    const crashed = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'boomAsk', replyTo }),
      10_000,
    );
    await expect(crashed).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(crashed).rejects.toThrow(/crashed handling 'boomAsk': boom at 0/);
    expect(performance.now() - startedAt).toBeLessThan(1000);
    const coded = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'boomCoded', replyTo }),
      10_000,
    );
    await expect(coded).rejects.toMatchObject({ code: 'TRYAGAIN' });
    expect(faults).toHaveLength(2);
    await expect(get(system, counter)).resolves.toBe(0);
  });

  it('logs to stderr by default, so no crash is silent', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const system = ActorSystem.start({ node: 'n0', process: 0, thread: 1 });
    systems.push(system);
    const counter = system.spawn('counter', counterSpec({ onCrash: 'resume' }));
    system.tell(counter, { type: 'boom' });
    await get(system, counter);
    const lines = write.mock.calls.map((call) => String(call[0]));
    expect(
      lines.some((l) =>
        /crash at n0\/0\/1\/counter handling 'boom' \(resume\): Error: boom at 0/.test(l),
      ),
    ).toBe(true);
  });

  it('falls back to stderr when the onError hook throws, and still supervises', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const system = ActorSystem.start({
      node: 'n0',
      process: 0,
      thread: 1,
      onError: () => {
        throw new Error('hook broke');
      },
    });
    systems.push(system);
    const counter = system.spawn('counter', counterSpec({ onCrash: 'reset' }));
    system.tell(counter, { type: 'add', by: 2 });
    system.tell(counter, { type: 'boom' });
    await expect(get(system, counter)).resolves.toBe(0);
    const text = write.mock.calls.map((call) => String(call[0])).join('');
    expect(text).toMatch(/boom at 2/);
    expect(text).toMatch(/hook broke/);
  });
});
