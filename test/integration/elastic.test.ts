import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, isDinomoError } from '../../src/index.js';
import type { KvClient } from '../../src/client/index.js';

const MiB = 1024 * 1024;
let cluster: Cluster | null = null;

afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

interface Load {
  stop(): Promise<{ acked: Map<string, string>; failed: number; errors: Map<string, number> }>;
}

/**
 * A steady write-and-read load from `clients` closed-loop clients over `keys` keys. Every put
 * writes a unique value; the latest acknowledged value of each key is remembered (a client's own
 * puts are sequential, and clients use disjoint keys, so the newest ack is the key's value).
 */
function startLoad(c: Cluster, clients: number, keysPerClient: number): Load {
  const acked = new Map<string, string>();
  const errors = new Map<string, number>();
  let failed = 0;
  let running = true;
  const loops = Array.from({ length: clients }, async (_, id) => {
    const kv: KvClient = c.client();
    for (let i = 0; running; i++) {
      const key = `c${id}-k${i % keysPerClient}`;
      try {
        if (i % 3 === 2) {
          const got = await kv.get(key);
          const want = acked.get(key);
          if (want !== undefined && got?.toString() !== want) {
            throw new Error(`read ${key}: got ${String(got)}, acknowledged ${want}`);
          }
        } else {
          const value = `v${i}`;
          await kv.put(key, value);
          acked.set(key, value);
        }
      } catch (err) {
        // CLOSED comes at once and forever: stop rather than spin on it.
        if (!isDinomoError(err) || err.code === 'CLOSED') throw err;
        failed++;
        errors.set(err.code, (errors.get(err.code) ?? 0) + 1);
        // An unanswered put may or may not have happened: forget what we know of the key.
        acked.delete(key);
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { acked, failed, errors };
    },
  };
}

async function expectReadable(c: Cluster, acked: Map<string, string>): Promise<void> {
  const kv = c.client();
  for (const [key, value] of acked) expect((await kv.get(key))?.toString(), key).toBe(value);
}

describe('elastic embedded cluster', () => {
  it('adds and removes a KN under load with no failed operation and no lost write', async () => {
    const c = (cluster = await Cluster.start({
      kns: 1,
      threadsPerKn: 2,
      regionBytes: 64 * MiB,
      blockBytes: 2 * MiB,
      cacheBytesPerThread: 1 * MiB,
    }));
    const load = startLoad(c, 8, 50);
    let result: Awaited<ReturnType<Load['stop']>>;
    let added, removed;
    try {
      await new Promise((r) => setTimeout(r, 300));
      added = await c.addKn();
      await new Promise((r) => setTimeout(r, 300));
      removed = await c.removeKn(1);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      result = await load.stop();
    }
    const { acked, failed, errors } = result;
    expect(added.knId).toBe(2);
    // The RN's view: every slot belongs to a thread of the remaining KN, in a later epoch.
    const routing = c.routing();
    expect(routing.kns).toEqual([{ knId: 2, ranks: [2, 3] }]);
    expect(routing.epoch).toBeGreaterThan(1);
    expect(routing.slotMap.every((rank) => rank === 2 || rank === 3)).toBe(true);
    // The new KN's two threads take half of the 16384 slots, and no slot moves twice.
    expect(added.slotsMoved).toBe(8192);
    expect(removed.slotsMoved).toBe(8192);
    expect(c.knIds()).toEqual([2]);
    expect(failed, JSON.stringify([...errors])).toBe(0);
    expect(acked.size).toBeGreaterThan(100);
    await expectReadable(c, acked);
    for (const m of [...added.moves, ...removed.moves]) {
      expect(m.pauseMs).toBeGreaterThan(0);
      // Reads wait for the old owner's merge as well, writes do not.
      expect(m.readPauseMs).toBeGreaterThanOrEqual(m.pauseMs);
    }
    console.log(
      `add: ${added.slotsMoved} slots in ${added.moves.length} moves, max pause ${added.maxPauseMs.toFixed(1)} ms ` +
        `(reads ${added.maxReadPauseMs.toFixed(1)} ms); remove: ${removed.slotsMoved} slots, ` +
        `max pause ${removed.maxPauseMs.toFixed(1)} ms (reads ${removed.maxReadPauseMs.toFixed(1)} ms)`,
    );
  }, 60_000);

  it('fails a KN over under load: every acknowledged write stays readable', async () => {
    const c = (cluster = await Cluster.start({
      kns: 2,
      threadsPerKn: 2,
      regionBytes: 64 * MiB,
      blockBytes: 2 * MiB,
      cacheBytesPerThread: 1 * MiB,
      // Two cores run four KN threads, the DPM and the clients: silence shorter than about a
      // second is not proof of death here (a false suspicion is safe, but moves more slots).
      heartbeatMs: 50,
      leaseMs: 300,
      suspectAfterMs: 1000,
    }));
    const load = startLoad(c, 8, 50);
    let result: Awaited<ReturnType<Load['stop']>>;
    let report;
    try {
      await new Promise((r) => setTimeout(r, 300));
      report = await c.failKn(1);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      result = await load.stop();
    }
    const { acked, errors } = result;
    expect(c.knIds()).toEqual([2]);
    // Suspicion needs suspectAfterMs of silence, counted from the last heartbeat before the kill.
    expect(report.detectMs).toBeGreaterThan(1000 - 2 * 50);
    expect(report.failoverMs).toBeGreaterThanOrEqual(report.detectMs);
    expect(report.slotsMoved).toBe(8192);
    // Only writes in flight to the killed KN may fail (outcome unknown), and nothing else.
    for (const code of errors.keys()) expect(['UNAVAILABLE', 'TIMEOUT']).toContain(code);
    await expectReadable(c, acked);
    console.log(
      `failKn: detected after ${report.detectMs.toFixed(0)} ms, slots served again after ${report.failoverMs.toFixed(0)} ms`,
    );
  }, 60_000);

  it("logs the M-node's scaling decisions with their reasons (autoscale off: nothing changes)", async () => {
    const c = (cluster = await Cluster.start({
      kns: 2,
      threadsPerKn: 1,
      regionBytes: 32 * MiB,
      blockBytes: 2 * MiB,
      policy: { decisionPeriodMs: 100, gracePeriodMs: 0 },
    }));
    await new Promise((r) => setTimeout(r, 450));
    const decisions = c.decisions();
    expect(decisions.length).toBeGreaterThanOrEqual(2);
    // An idle cluster is below the scale-in occupancy: the policy would remove the idlest KN.
    expect(decisions[0]).toMatchObject({ action: 'remove' });
    expect(decisions[0]?.reason).toMatch(/occupancy/);
    expect(c.knIds()).toEqual([1, 2]);
  });
});
