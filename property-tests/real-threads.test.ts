import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, isDinomoError, type KvClient } from '../src/index.js';
import { SeededRandom } from '../src/util/random.js';
import { checkHistory, formatWitness } from './checker/index.js';
import type { Operation, OpKind, OpStatus } from './checker/history.js';

const MiB = 2 ** 20;
let cluster: Cluster | null = null;

afterEach(async () => {
  await cluster?.stop();
  cluster = null;
});

const nowNs = (): number => Number(process.hrtime.bigint());

/**
 * The real-threads smoke of the linearizability suite: the same recording and checker as the
 * simulator, on the embedded cluster with real worker threads (KN threads, the DPM manager, the
 * merge pool) and concurrent clients. Not reproducible like the simulator, so it keeps the history
 * and the witness on failure. Timestamps come from process.hrtime (one monotonic clock for the
 * process); an op's interval spans the whole await, so it contains the real linearization point.
 */
interface Workload {
  ops: Operation[];
  run(c: Cluster, clients: number, keys: number, seconds: number): Promise<void>;
  finalReads(c: Cluster, keys: number): Promise<void>;
}

/**
 * Closed-loop clients recording every operation. A process whose operation ended without a known
 * outcome (a write that got no answer) retires, as in Jepsen, and its client goes on as a new one.
 */
function workload(): Workload {
  const ops: Operation[] = [];
  let nextId = 0;
  let nextProcess = 1000;
  const record = async (
    client: KvClient,
    process: number,
    f: OpKind,
    key: string,
    put: string | null,
  ): Promise<OpStatus> => {
    const call = nowNs();
    let value: string | null = f === 'put' ? put : null;
    let existed: boolean | null = null;
    let status: OpStatus = 'ok';
    try {
      if (f === 'put') await client.put(key, put as string);
      else if (f === 'get') value = (await client.get(key))?.toString('latin1') ?? null;
      else existed = await client.delete(key);
    } catch (err) {
      status = f === 'get' ? 'fail' : 'info';
      value = f === 'put' ? put : null;
      if (!isDinomoError(err)) throw err;
    }
    ops.push({ id: nextId++, process, f, key, value, existed, call, ret: nowNs(), status });
    return status;
  };
  return {
    ops,
    async run(c, clients, keys, seconds) {
      const deadline = nowNs() + seconds * 1e9;
      await Promise.all(
        Array.from({ length: clients }, async (_, p) => {
          const client = c.client();
          const random = new SeededRandom(1000 + p);
          let process = p;
          for (let i = 0; nowNs() < deadline && i < 15_000; i++) {
            const roll = random.int(10);
            const f: OpKind = roll < 5 ? 'get' : roll < 9 ? 'put' : 'delete';
            const status = await record(client, process, f, `key${random.int(keys)}`, `c${p}-${i}`);
            if (status === 'info') process = nextProcess++;
          }
        }),
      );
    },
    // Final reads from a fresh process: every acknowledged write must still be there.
    async finalReads(c, keys) {
      const reader = c.client();
      const process = nextProcess++;
      for (let k = 0; k < keys; k++) await record(reader, process, 'get', `key${k}`, null);
    },
  };
}

function check(ops: Operation[], label: string): void {
  const result = checkHistory(ops, { budgetMsPerKey: 10_000 });
  const bad = result.violations[0];
  if (bad?.witness) console.log(formatWitness(bad.witness, ops));
  console.log(
    `${label}: ${ops.length} ops, ${ops.filter((o) => o.status === 'info').length} indeterminate; ` +
      `checker ${result.keys.reduce((t, k) => t + k.ms, 0).toFixed(0)} ms`,
  );
  expect(result.ok).toBe(true);
}

const smokeOptions = {
  regionBytes: 64 * MiB,
  blockBytes: 2 * MiB,
  cacheBytesPerThread: 64 * 1024, // Small, so reads also come from shortcuts and the index.
  groupCommitUs: 100,
  requestTimeoutMs: 5000,
};

describe('linearizability on real worker threads (smoke)', () => {
  it('records a linearizable history from 8 concurrent clients on 2 KNs × 2 threads', async () => {
    const c = (cluster = await Cluster.start({ kns: 2, threadsPerKn: 2, ...smokeOptions }));
    const w = workload();
    await w.run(c, 8, 24, 3);
    await w.finalReads(c, 24);
    check(w.ops, 'real threads');
    expect(w.ops.length).toBeGreaterThan(2000);
  }, 60_000);

  it('stays linearizable while a KN is added, one fails and one is removed', async () => {
    const c = (cluster = await Cluster.start({
      kns: 2,
      threadsPerKn: 2,
      ...smokeOptions,
      heartbeatMs: 50,
      leaseMs: 300,
      suspectAfterMs: 1000,
    }));
    const w = workload();
    const reconfigure = (async () => {
      await new Promise((r) => setTimeout(r, 400));
      const added = await c.addKn();
      const failed = await c.failKn(1);
      const removed = await c.removeKn(2);
      return { added, failed, removed };
    })();
    await w.run(c, 8, 24, 4);
    const { added, failed, removed } = await reconfigure;
    expect(c.knIds()).toEqual([3]);
    await w.finalReads(c, 24);
    console.log(
      `reconfiguration: add ${added.slotsMoved} slots (max pause ${added.maxPauseMs.toFixed(1)} ms), ` +
        `fail detected after ${failed.detectMs.toFixed(0)} ms and served again after ` +
        `${failed.failoverMs.toFixed(0)} ms, remove ${removed.slotsMoved} slots ` +
        `(max pause ${removed.maxPauseMs.toFixed(1)} ms)`,
    );
    check(w.ops, 'real threads with add, fail and remove');
  }, 60_000);
});
