import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { MessageChannel, Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, PortTransport } from '../../../src/actors/index.js';
import { counterSpec, type CounterMsg } from '../../fixtures/actors/counter.js';

// The worker runs the compiled runtime (see the fixture); `npm test` builds it first.
const compiled = fileURLToPath(new URL('../../../dist/actors/index.js', import.meta.url));
const entry = new URL('../../fixtures/actors/worker-counter.mjs', import.meta.url);

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.skipIf(!existsSync(compiled))('PortTransport across a real worker thread', () => {
  it('asks, tells and answers errors across threads', async () => {
    const main = ActorSystem.start({ node: 'n0', process: 0, thread: 0, onError: () => {} });
    cleanups.push(() => main.stop());
    const channel = new MessageChannel();
    const worker = new Worker(entry, {
      workerData: { port: channel.port2, peer: main.address },
      transferList: [channel.port2],
    });
    cleanups.push(() => worker.terminate());
    const [ready] = (await once(worker, 'message')) as [{ ready: string }];
    new PortTransport(main, channel.port1, ready.ready);
    const remote = main.remoteRef<CounterMsg>(`${ready.ready}/counter`);

    expect(main.tell(remote, { type: 'add', by: 40 })).toBe(true);
    const get = (): Promise<number> =>
      main.ask<CounterMsg, number>(remote, (replyTo) => ({ type: 'get', replyTo }), 5000);
    await expect(get()).resolves.toBe(40);

    const fail = main.ask<CounterMsg, number>(
      remote,
      (replyTo) => ({ type: 'fail', code: 'MOVED', replyTo }),
      5000,
    );
    await expect(fail).rejects.toMatchObject({ code: 'MOVED', origin: 'remote' });

    const local = main.spawn('local', counterSpec());
    main.tell(remote, { type: 'pingBack', to: local, by: 2 });
    await get(); // the worker handled pingBack before this get, and its tell left first
    await expect(
      main.ask<CounterMsg, number>(local, (replyTo) => ({ type: 'get', replyTo }), 5000),
    ).resolves.toBe(2);

    const ghost = main.remoteRef<CounterMsg>(`${ready.ready}/ghost`);
    await expect(
      main.ask<CounterMsg, number>(ghost, (replyTo) => ({ type: 'get', replyTo }), 5000),
    ).rejects.toThrow(/no actor/);

    const silent = main.ask<CounterMsg, number>(
      remote,
      (replyTo) => ({ type: 'silent', replyTo }),
      10_000,
    );
    worker.postMessage('stop');
    await expect(silent).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
