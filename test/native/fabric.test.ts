import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { DinomoError, isDinomoError } from '../../src/errors/index.js';
import { FabricHost, grantToJson, type FabricGrant } from '../../src/fabric/index.js';
import { fabricAddon, fabricAvailable } from '../../src/util/native-addon.js';

const skipWhy = fabricAvailable()
  ? ''
  : ' (SKIPPED: the fabric addon is not built; it needs `apt-get install -y libfabric-dev`, then `npm run build:native`)';

// Said once per run, so a skipped native test never passes silently.
if (skipWhy !== '') console.warn(`test/native/fabric.test.ts${skipWhy}`);

const regionBytes = 1 << 20;
const providers = ['shm', 'tcp'] as const;
const opened: { close(): void }[] = [];

function track<T extends { close(): void }>(thing: T): T {
  opened.push(thing);
  return thing;
}

afterEach(() => {
  for (const thing of opened.splice(0).reverse()) thing.close();
});

/**
 * A KN thread's fabric in a child process (test/fixtures/fabric-kn.mjs), as in a cluster: the shm
 * provider cannot have a client outlive its server inside one process.
 */
class KnProcess {
  private readonly child: ChildProcess;
  private readonly lines: AsyncIterator<string>;
  private readonly stdin: Writable;

  constructor(grant: FabricGrant) {
    const child = spawn(process.execPath, ['test/fixtures/fabric-kn.mjs'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child = child;
    // libfabric reports refused accesses on stderr; they are expected here.
    child.stderr.resume();
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    this.stdin = child.stdin;
    track(this);
    void this.run({ op: 'open', grant: grantToJson(grant), timeoutMs: 400, bounceBytes: 4096 });
  }

  async run(command: { op: string } & Record<string, unknown>): Promise<unknown> {
    this.stdin.write(`${JSON.stringify(command)}\n`);
    const next = await this.lines.next();
    if (next.done === true) throw new Error('the KN process exited');
    const answer = JSON.parse(next.value) as
      { ok: true; value: unknown } | { ok: false; code: string; message: string };
    if (!answer.ok) throw new DinomoError(answer.code as 'INTERNAL', answer.message);
    return answer.value;
  }

  async reconnect(grant: () => FabricGrant): Promise<unknown> {
    try {
      return await this.run({ op: 'reconnect', grant: grantToJson(grant()) });
    } catch (err) {
      if (!isDinomoError(err) || err.message.includes('KN process')) throw err;
      // The DPM refused the grant (FENCED, CLOSED): the KN's regrant throws the same error.
      return this.run({ op: 'reconnect', error: { code: err.code, message: err.message } });
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  close(): void {
    this.child.kill('SIGKILL');
  }

  async killed(): Promise<void> {
    const exited = new Promise((done) => this.child.once('exit', done));
    this.child.kill('SIGKILL');
    await exited;
  }
}

/** The /dev/shm names (lock files and segments) of dinomo endpoints opened by process `pid`. */
function shmNamesOf(pid: number): string[] {
  return readdirSync('/dev/shm').filter((name) => name.startsWith(`dinomo-${pid}-`));
}

function host(region: SharedArrayBuffer, provider: 'shm' | 'tcp'): FabricHost {
  return track(new FabricHost(region, { provider, rankCount: 4 }));
}

const code = (c: string): unknown => expect.objectContaining({ code: c }) as unknown;
const hex = (length: number, byte: number) => Buffer.alloc(length, byte).toString('hex');

describe.skipIf(skipWhy !== '')(`native fabric (libfabric)${skipWhy}`, () => {
  it("names shm endpoints itself and unlinks a killed process's segments, not a live one's", async () => {
    const region = new SharedArrayBuffer(regionBytes);
    const server = host(region, 'shm');
    const kn = new KnProcess(server.grant(0, 0));
    await kn.run({ op: 'write64', offset: 64, value: '1' });
    // A lock file and a 16 MiB segment per endpoint; kill -9 leaves both behind.
    expect(shmNamesOf(kn.pid).length).toBeGreaterThanOrEqual(2);
    const ours = shmNamesOf(process.pid);
    expect(ours.length).toBeGreaterThanOrEqual(2);
    await kn.killed();
    expect(shmNamesOf(kn.pid).length).toBeGreaterThanOrEqual(2);
    expect(fabricAddon().sweepShmNames()).toBeGreaterThanOrEqual(1);
    expect(shmNamesOf(kn.pid)).toEqual([]);
    // The live server's names stay, and a new KN still reaches it.
    expect(shmNamesOf(process.pid)).toEqual(ours);
    const again = new KnProcess(server.grant(1, 0));
    await again.run({ op: 'write64', offset: 72, value: '2' });
    await again.run({ op: 'persist' });
    expect(new BigInt64Array(region)[9]).toBe(2n);
  });

  describe.each(providers)('provider %s', (provider) => {
    it('reads, writes and runs 8-byte atomics on the region, one RT each', async () => {
      const region = new SharedArrayBuffer(regionBytes);
      const kn = new KnProcess(host(region, provider).grant(0, 0));
      const bytes = new Uint8Array(region);
      const words = new BigInt64Array(region);
      await kn.run({
        op: 'write',
        offset: 1000,
        hex: Buffer.from('one-sided write').toString('hex'),
      });
      await kn.run({ op: 'persist' });
      expect(Buffer.from(bytes.subarray(1000, 1015)).toString()).toBe('one-sided write');
      // Larger than the 4 KiB bounce buffer: split into pieces, all of which must land.
      const big = Buffer.from(Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff));
      await kn.run({ op: 'write', offset: 8192, hex: big.toString('hex') });
      expect(await kn.run({ op: 'read', offset: 8192, length: big.length })).toBe(
        big.toString('hex'),
      );
      expect(Buffer.from(bytes.subarray(8192, 8192 + big.length)).equals(big)).toBe(true);
      await kn.run({ op: 'write64', offset: 64, value: '-5' });
      // A write completes when sent; the flushing read of persist is what says it was applied.
      await kn.run({ op: 'persist' });
      expect(words[8]).toBe(-5n);
      expect(await kn.run({ op: 'read64', offset: 64 })).toBe('-5');
      expect(await kn.run({ op: 'cas64', offset: 64, expected: '-5', desired: '11' })).toBe('-5');
      expect(await kn.run({ op: 'cas64', offset: 64, expected: '-5', desired: '12' })).toBe('11');
      expect(await kn.run({ op: 'faa64', offset: 64, delta: '4' })).toBe('11');
      expect(words[8]).toBe(15n);
      expect(await kn.run({ op: 'counters' })).toMatchObject({
        rts: 10,
        writes: 3,
        reads: 2,
        atomics: 3,
        persists: 2,
      });
    });

    it('refuses an access outside the region before posting it, and keeps working', async () => {
      const region = new SharedArrayBuffer(regionBytes);
      const kn = new KnProcess(host(region, provider).grant(1, 0));
      await expect(kn.run({ op: 'read', offset: regionBytes - 8, length: 16 })).rejects.toEqual(
        code('CORRUPT'),
      );
      await expect(kn.run({ op: 'write64', offset: 12, value: '1' })).rejects.toEqual(
        code('CORRUPT'),
      );
      await expect(
        kn.run({ op: 'cas64', offset: regionBytes, expected: '0', desired: '1' }),
      ).rejects.toEqual(code('CORRUPT'));
      await kn.run({ op: 'write64', offset: 16, value: '9' });
      await kn.run({ op: 'persist' });
      expect(new BigInt64Array(region)[2]).toBe(9n);
    });

    it("fails a fenced KN thread's write without changing the region; others go on", async () => {
      const region = new SharedArrayBuffer(regionBytes);
      const dpm = host(region, provider);
      const fenced = new KnProcess(dpm.grant(0, 0));
      const other = new KnProcess(dpm.grant(1, 0));
      const bytes = new Uint8Array(region);
      await fenced.run({ op: 'write', offset: 4096, hex: hex(64, 1) });
      await fenced.run({ op: 'persist' });
      await other.run({ op: 'write64', offset: 0, value: '2' });
      dpm.fence(0, 0);
      const before = Buffer.from(bytes.slice(4096, 4096 + 64));
      // A write's completion means only "sent": the flushing read of persist reports the refusal.
      await expect(
        (async () => {
          await fenced.run({ op: 'write', offset: 4096, hex: hex(64, 0xee) });
          await fenced.run({ op: 'persist' });
        })(),
      ).rejects.toEqual(code('UNAVAILABLE'));
      expect(Buffer.from(bytes.subarray(4096, 4096 + 64)).equals(before)).toBe(true);
      // The endpoint stays broken, and the DPM gives the fenced incarnation no new grant.
      await expect(fenced.run({ op: 'write64', offset: 4096, value: '7' })).rejects.toEqual(
        code('UNAVAILABLE'),
      );
      await expect(fenced.reconnect(() => dpm.grant(0, 0))).rejects.toEqual(code('FENCED'));
      expect(Buffer.from(bytes.subarray(4096, 4096 + 64)).equals(before)).toBe(true);
      // Another rank keeps its access.
      await other.run({ op: 'write64', offset: 8, value: '3' });
      await other.run({ op: 'persist' });
      expect(new BigInt64Array(region)[1]).toBe(3n);
      // The fenced rank restarts as the next incarnation and writes again.
      const restarted = new KnProcess(dpm.grant(0, 1));
      await restarted.run({ op: 'write64', offset: 4096, value: '8' });
      await restarted.run({ op: 'persist' });
      expect(new BigInt64Array(region)[512]).toBe(8n);
    });

    it('reconnects after a DPM restart and finds the region as it was', async () => {
      const region = new SharedArrayBuffer(regionBytes);
      let dpm = host(region, provider);
      const kn = new KnProcess(dpm.grant(2, 0));
      await kn.run({ op: 'write64', offset: 256, value: '77' });
      await kn.run({ op: 'persist' });
      dpm.close();
      await expect(kn.run({ op: 'read64', offset: 256 })).rejects.toEqual(code('UNAVAILABLE'));
      // While no DPM answers, a reconnect fails and can be retried.
      await expect(kn.reconnect(() => dpm.grant(2, 0))).rejects.toEqual(code('CLOSED'));
      dpm = host(region, provider);
      await kn.reconnect(() => dpm.grant(2, 0));
      expect(await kn.run({ op: 'read64', offset: 256 })).toBe('77');
    });
  });
});
