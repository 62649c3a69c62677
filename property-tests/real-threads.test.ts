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
 * KN failure and add/remove join this test once the elastic cluster exists (issue 4).
 */
describe('linearizability on real worker threads (smoke)', () => {
  it('records a linearizable history from 8 concurrent clients on 2 KNs × 2 threads', async () => {
    const c = await Cluster.start({
      kns: 2,
      threadsPerKn: 2,
      regionBytes: 64 * MiB,
      blockBytes: 2 * MiB,
      cacheBytesPerThread: 64 * 1024, // Small, so reads also come from shortcuts and the index.
      groupCommitUs: 100,
      requestTimeoutMs: 5000,
    });
    cluster = c;
    const ops: Operation[] = [];
    const keys = 24;
    const clients = 8;
    const deadline = nowNs() + 3e9;
    let nextId = 0;
    const record = async (
      client: KvClient,
      process: number,
      f: OpKind,
      key: string,
      put: string | null,
    ): Promise<void> => {
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
    };
    await Promise.all(
      Array.from({ length: clients }, async (_, p) => {
        const client = c.client();
        const random = new SeededRandom(1000 + p);
        for (let i = 0; nowNs() < deadline && i < 15_000; i++) {
          const roll = random.int(10);
          const f: OpKind = roll < 5 ? 'get' : roll < 9 ? 'put' : 'delete';
          await record(client, p, f, `key${random.int(keys)}`, `c${p}-${i}`);
        }
      }),
    );
    // Final reads from a fresh process: every acknowledged write must still be there.
    const reader = c.client();
    for (let k = 0; k < keys; k++) await record(reader, clients, 'get', `key${k}`, null);

    const result = checkHistory(ops, { budgetMsPerKey: 10_000 });
    const bad = result.violations[0];
    if (bad?.witness) console.log(formatWitness(bad.witness, ops));
    console.log(
      `real threads: ${ops.length} ops, ${keys} keys, ${clients} clients, ` +
        `${ops.filter((o) => o.status === 'info').length} indeterminate; ` +
        `checker ${result.keys.reduce((t, k) => t + k.ms, 0).toFixed(0)} ms`,
    );
    expect(result.ok).toBe(true);
    expect(ops.length).toBeGreaterThan(2000);
  }, 60_000);
});
