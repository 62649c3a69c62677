import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, type ActorRef } from '../../../src/actors/index.js';
import { counterSpec, gate, type CounterMsg } from '../../fixtures/actors/counter.js';

const systems: ActorSystem[] = [];
function start(mailboxMax?: number): ActorSystem {
  const options = { node: 'n0', process: 0, thread: 1, onError: () => {} };
  const system = ActorSystem.start(mailboxMax === undefined ? options : { ...options, mailboxMax });
  systems.push(system);
  return system;
}
afterEach(() => {
  for (const system of systems.splice(0)) system.stop();
});

function get(system: ActorSystem, ref: ActorRef<CounterMsg>): Promise<number> {
  return system.ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), 1000);
}

async function drained(system: ActorSystem, ref: ActorRef<CounterMsg>): Promise<void> {
  while ((system.actorStats(ref)?.queued ?? 0) > 0)
    await new Promise((resolve) => setImmediate(resolve));
}

describe('bounded mailboxes', () => {
  it('refuses tells beyond mailboxMax and counts them as dropped', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec({ mailboxMax: 3 }));
    // nact handles one message per loop turn, so these four are all queued at once.
    const accepted = [1, 2, 3, 4].map((by) => system.tell(counter, { type: 'add', by }));
    expect(accepted).toEqual([true, true, true, false]);
    expect(system.actorStats(counter)).toEqual({
      queued: 3,
      mailboxMax: 3,
      dropped: 1,
      crashes: 0,
    });
    await expect(get(system, counter)).rejects.toMatchObject({
      code: 'OVERLOADED',
      retriable: true,
    });
    expect(system.stats().dropped).toBe(2);
    await drained(system, counter);
    await expect(get(system, counter)).resolves.toBe(6);
  });

  it('counts the message in progress, so a busy actor with mailboxMax 1 refuses', async () => {
    const system = start();
    const hold = gate();
    const counter = system.spawn('counter', counterSpec({ mailboxMax: 1, gate: hold }));
    const held = system.ask<CounterMsg, number>(
      counter,
      (replyTo) => ({ type: 'hold', replyTo }),
      1000,
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(system.tell(counter, { type: 'add', by: 1 })).toBe(false);
    await expect(get(system, counter)).rejects.toMatchObject({ code: 'OVERLOADED' });
    hold.open();
    await expect(held).resolves.toBe(0);
    expect(system.tell(counter, { type: 'add', by: 1 })).toBe(true);
    await drained(system, counter);
    await expect(get(system, counter)).resolves.toBe(1);
  });

  it('takes the default bound from the system and frees slots after a crash', async () => {
    const system = start(2);
    const counter = system.spawn('counter', counterSpec({ onCrash: 'resume' }));
    expect(system.actorStats(counter)?.mailboxMax).toBe(2);
    expect(system.tell(counter, { type: 'boom' })).toBe(true);
    expect(system.tell(counter, { type: 'boom' })).toBe(true);
    expect(system.tell(counter, { type: 'boom' })).toBe(false);
    await drained(system, counter);
    expect(system.actorStats(counter)).toMatchObject({ queued: 0, crashes: 2, dropped: 1 });
    await expect(get(system, counter)).resolves.toBe(0);
  });

  it('never grows past the bound under a flood', async () => {
    const system = start();
    const counter = system.spawn('counter', counterSpec({ mailboxMax: 100 }));
    let accepted = 0;
    for (let i = 0; i < 10_000; i++) if (system.tell(counter, { type: 'add', by: 1 })) accepted++;
    expect(accepted).toBe(100);
    expect(system.actorStats(counter)?.queued).toBe(100);
    await drained(system, counter);
    await expect(get(system, counter)).resolves.toBe(100);
  });
});
