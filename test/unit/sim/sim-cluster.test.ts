import { describe, expect, it } from 'vitest';
import { SlotState } from '../../../src/kn/kn-thread.js';
import { SimCluster, Simulation } from '../../../src/sim/index.js';

function cluster(sim: Simulation, knThreads: number): SimCluster {
  return new SimCluster(sim, {
    knThreads,
    maxKnThreads: knThreads + 2,
    clientRetryUs: 50,
    cacheBytesPerThread: 4096,
    groupCommitUs: 20,
    groupCommitBytes: 2048,
    recentBlocks: 2,
    inflightMax: 64,
    requestTimeoutMs: 20,
    controlTimeoutMs: 5,
    reconnectRetryUs: 200,
    heartbeatUs: 500,
    leaseUs: 2000,
    suspectAfterUs: 1500,
    network: { minDelayUs: 2, maxDelayUs: 40 },
    dpm: {
      regionBytes: 2 * 1024 * 1024,
      blockBytes: 4096,
      indexBytes: 64 * 1024,
      taskUsMin: 5,
      taskUsMax: 80,
      mergeBatchEntries: 8,
      maxConcurrentMerges: 2,
      tickUs: 500,
    },
    mutants: {},
  });
}

const limits = { untilUs: 5_000_000, maxEvents: 1_000_000 };

/** Every slot is owned by exactly one thread, and it is the one the published map names. */
function expectOneOwnerPerSlot(c: SimCluster): void {
  for (let slot = 0; slot < c.slotMap.length; slot++) {
    const owners = c.ownedSlots.flatMap((s, rank) => (s[slot] === SlotState.owned ? [rank] : []));
    expect(owners, `slot ${slot}`).toEqual([c.slotMap[slot]]);
  }
}

describe('SimCluster reconfiguration', () => {
  it('two KN threads added back to back leave every slot with exactly one owner', async () => {
    const sim = new Simulation(3);
    const c = cluster(sim, 1);
    let started = false;
    void c.start().then(() => (started = true));
    await sim.run(limits, () => started);
    // The second add is planned while the first one's moves are still queued.
    expect(c.addKn()).toBe(true);
    expect(c.addKn()).toBe(true);
    await sim.run(limits, () => c.liveRanks.length === 3 && !c.monitor.busy);
    expect(c.errors).toEqual([]);
    expect([...c.liveRanks].sort()).toEqual([0, 1, 2]);
    expectOneOwnerPerSlot(c);
    const counts = [0, 1, 2].map((r) => c.slotMap.filter((o) => o === r).length);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(2);
  });

  it('removing a thread moves all its slots to the others, and writes stay readable', async () => {
    const sim = new Simulation(4);
    const c = cluster(sim, 3);
    let started = false;
    void c.start().then(() => (started = true));
    await sim.run(limits, () => started);
    const kv = c.client();
    let done = false;
    void (async () => {
      for (let i = 0; i < 50; i++) await kv.put(`key${i}`, `v${i}`);
      expect(c.removeKn(1)).toBe(true);
      for (let i = 0; i < 50; i++) expect((await kv.get(`key${i}`))?.toString()).toBe(`v${i}`);
      done = true;
    })();
    await sim.run(limits, () => done && !c.monitor.busy);
    expect(done).toBe(true);
    expect(c.slotMap.includes(1)).toBe(false);
    expectOneOwnerPerSlot(c);
  });
});
