import { describe, expect, it } from 'vitest';
import type { Mutants } from '../../../src/config/mutants.js';
import { SlotState } from '../../../src/kn/kn-thread.js';
import { slotOfKey } from '../../../src/routing/index.js';
import { SimCluster, Simulation } from '../../../src/sim/index.js';
import { regionValue } from '../../integration/helpers.js';

function cluster(sim: Simulation, knThreads: number, mutants: Mutants = {}): SimCluster {
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
    mutants,
  });
}

/**
 * Moves the slot of `key` from thread 0 to thread 1 while thread 0's chain merges slowly, writing
 * the key before the move and while the new owner waits for that merge. Returns what the client
 * saw and the slot's state at the new owner when its write was acknowledged.
 */
async function moveWithSlowMerge(mutants: Mutants) {
  const sim = new Simulation(5);
  const c = cluster(sim, 2, mutants);
  let started = false;
  void c.start().then(() => (started = true));
  await sim.run(limits, () => started);
  // A key thread 0 owns.
  let n = 0;
  while (c.slotMap[slotOfKey(Buffer.from(`key${n}`))] !== 0) n++;
  const key = `key${n}`;
  const slot = slotOfKey(Buffer.from(key));
  const kv = c.client();
  const seen: { stateAtWrite: number; read: string | undefined; done: boolean } = {
    stateAtWrite: -1,
    read: undefined,
    done: false,
  };
  void (async () => {
    // Every merge of chain 0 takes 3 ms longer from now on: v1 stays in its log for a while.
    c.dpm.addStall(sim.nowUs(), sim.nowUs() + 50_000, 3000, 0);
    await kv.put(key, 'v1');
    expect(c.moveSlot(slot, 1)).toBe(true);
    await sim.run(limits, () => c.ownedSlots[1]?.[slot] === SlotState.settling);
    await kv.put(key, 'v2');
    seen.stateAtWrite = c.ownedSlots[1]?.[slot] ?? -1;
    seen.read = (await kv.get(key))?.toString();
    seen.done = true;
  })();
  await sim.run(limits, () => seen.done && !c.monitor.busy && c.dpm.allMerged);
  expect(c.errors).toEqual([]);
  return { ...seen, indexed: regionValue(c.dpm.sab, key), ownerState: c.ownedSlots[1]?.[slot] };
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

  it("a moved slot takes writes before the old owner's log is merged, and reads after", async () => {
    const run = await moveWithSlowMerge({});
    // The write was acknowledged while the new owner still waited for the old owner's merge.
    expect(run.stateAtWrite).toBe(SlotState.settling);
    expect(run.read).toBe('v2');
    expect(run.ownerState).toBe(SlotState.owned);
    // v1 reached the index after v2, and the merge kept the newer version.
    expect(run.indexed).toBe('v2');
  });

  it('merging by arrival instead of version puts the older value back (the mergeByArrival mutant)', async () => {
    const run = await moveWithSlowMerge({ mergeByArrival: true });
    expect(run.stateAtWrite).toBe(SlotState.settling);
    // The new owner still serves v2 from its cache, but the index went back to v1.
    expect(run.read).toBe('v2');
    expect(run.indexed).toBe('v1');
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
