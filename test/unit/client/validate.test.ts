import { afterEach, describe, expect, it } from 'vitest';
import { ActorSystem, TcpTransportServer } from '../../../src/actors/index.js';
import { keyBytes, valueBytes } from '../../../src/client/validate.js';
import { isDinomoError } from '../../../src/errors/index.js';
import { monitorActorName } from '../../../src/kn/index.js';
import {
  encodeSlotMap,
  monitorSystemLocation,
  type RnMessage,
  type RoutingTable,
} from '../../../src/routing/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isDinomoError(err)) return err.code;
    throw err;
  }
  return 'none';
}

describe('edge validation', () => {
  it('accepts keys of 1 to 1024 bytes, as strings (UTF-8) or bytes', () => {
    expect(keyBytes('a').length).toBe(1);
    expect(keyBytes('é').length).toBe(2);
    expect(keyBytes(new Uint8Array(1024)).length).toBe(1024);
  });

  it('refuses empty, oversized and non-string keys with INVALID_KEY', () => {
    expect(codeOf(() => keyBytes(''))).toBe('INVALID_KEY');
    expect(codeOf(() => keyBytes('x'.repeat(1025)))).toBe('INVALID_KEY');
    expect(codeOf(() => keyBytes('é'.repeat(513)))).toBe('INVALID_KEY'); // 1026 bytes
    for (const bad of [42, null, undefined, {}, ['a'], true])
      expect(codeOf(() => keyBytes(bad))).toBe('INVALID_KEY');
  });

  it('accepts values up to 1 MiB and refuses larger or non-bytes values with INVALID_VALUE', () => {
    expect(valueBytes('').length).toBe(0);
    expect(valueBytes(new Uint8Array(1024 * 1024)).length).toBe(1024 * 1024);
    expect(codeOf(() => valueBytes(new Uint8Array(1024 * 1024 + 1)))).toBe('INVALID_VALUE');
    for (const bad of [1, null, undefined, { a: 1 }])
      expect(codeOf(() => valueBytes(bad))).toBe('INVALID_VALUE');
  });

  it('says what to do in the message', () => {
    try {
      keyBytes('');
    } catch (err) {
      expect(String(err)).toMatch(
        /INVALID_KEY: a key must not be empty \(Keys are strings or Uint8Arrays/,
      );
    }
  });
});

describe('connect', () => {
  const secret = 'a cluster secret of more than sixteen bytes';
  const cleanups: (() => unknown)[] = [];
  const savedSecret = process.env.DINOMO_SECRET;
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    if (savedSecret === undefined) delete process.env.DINOMO_SECRET;
    else process.env.DINOMO_SECRET = savedSecret;
  });

  /**
   * A monitor that answers `routing` with a table listing no KN thread, at monitorSystemLocation:
   * enough to connect, and every request is then refused with TRYAGAIN until requestTimeoutMs.
   */
  async function fakeMonitor(): Promise<{ port: number; fetches: () => number }> {
    let fetches = 0;
    const system = ActorSystem.start({ ...monitorSystemLocation, onError: () => {} });
    cleanups.push(() => system.stop());
    const table: RoutingTable = {
      epoch: 1,
      slotMap: encodeSlotMap(new Uint16Array(16384)),
      endpoints: [],
    };
    system.spawn<null, RnMessage>(monitorActorName, {
      initialState: null,
      handle: (state, msg, ctx) => {
        fetches++;
        ctx.reply(msg.replyTo, table);
        return state;
      },
    });
    const server = await TcpTransportServer.listen(system, { port: 0, secret });
    cleanups.push(() => server.close());
    return { port: server.port, fetches: () => fetches };
  }

  it('validates the URL, and refuses redis:// with NOT_SUPPORTED', async () => {
    const { connect } = await import('../../../src/index.js');
    await expect(connect('nonsense')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(connect('http://127.0.0.1:1')).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(connect('redis://127.0.0.1:6379')).rejects.toMatchObject({
      code: 'NOT_SUPPORTED',
      message: /dinomo:\/\/host:port/,
    });
  });

  it('needs a host and a port in a dinomo:// URL', async () => {
    const { connect } = await import('../../../src/index.js');
    for (const url of ['dinomo://127.0.0.1', 'dinomo://127.0.0.1:0', 'dinomo://:7400']) {
      await expect(connect(url, { secret })).rejects.toMatchObject({
        code: 'INVALID_OPTION',
        message: /needs a host and a port/,
      });
    }
  });

  it('needs the cluster secret, from the options or DINOMO_SECRET', async () => {
    const { connect } = await import('../../../src/index.js');
    delete process.env.DINOMO_SECRET;
    await expect(connect('dinomo://127.0.0.1:7400')).rejects.toMatchObject({
      code: 'INVALID_OPTION',
      message: /DINOMO_SECRET/,
    });
  });

  it('connects to a live monitor with a dinomo:// URL, the secret given or from DINOMO_SECRET', async () => {
    const { connect } = await import('../../../src/index.js');
    const monitor = await fakeMonitor();
    const url = `dinomo://127.0.0.1:${monitor.port}`;

    const client = await connect(url, { secret, requestTimeoutMs: 200 });
    cleanups.push(() => client.close());
    expect(monitor.fetches()).toBe(1);
    // No KN thread serves: refused until requestTimeoutMs, which connect() passed on.
    const started = process.hrtime.bigint();
    await expect(client.get('k')).rejects.toMatchObject({ code: 'TRYAGAIN' });
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1000);
    await client.close();

    const fetched = monitor.fetches();
    expect(fetched).toBeGreaterThan(1);
    process.env.DINOMO_SECRET = secret;
    const fromEnv = await connect(url, { requestTimeoutMs: 200 });
    cleanups.push(() => fromEnv.close());
    // A refresh of the closed client may still have been on its way: at least one fetch more.
    expect(monitor.fetches()).toBeGreaterThan(fetched);
  });
});
