import type { KvClient } from '../../src/client/embedded-client.js';
import type { Mutants } from '../../src/config/mutants.js';
import { ChainWalker } from '../../src/kn/clover-chain.js';
import { EntryOp } from '../../src/dpm/log-entry.js';
import { IndexReader } from '../../src/dpm/index-reader.js';
import { Chain, align, metadataBytes } from '../../src/dpm/layout.js';
import { partitionedKeyBytesMax, tagKey } from '../../src/dpm/partition-key.js';
import { hashKey } from '../../src/util/hash.js';
import { isDinomoError } from '../../src/errors/index.js';
import { LocalFabric } from '../../src/fabric/index.js';
import { ThreadStat } from '../../src/kn/thread-stats.js';
import { slotOfKey } from '../../src/routing/index.js';
import {
  SimCluster,
  Simulation,
  clientNode,
  dpmNode,
  knNode,
  monitorNode,
} from '../../src/sim/index.js';
import { checkHistory, formatWitness, type CheckResult } from '../checker/index.js';
import type { Operation, OpKind, OpStatus } from '../checker/history.js';
import { extraKnThreads, type Scenario } from './scenario.js';
import type { ClusterMode } from '../../src/config/options.js';

/** What went wrong in a run, if anything. */
export interface RunFailure {
  /**
   * violation: the history is not linearizable. unknown: the checker ran out of budget (a failure,
   * never a pass). stuck: the system stopped answering. exception: the system under test threw.
   * harness: the test machinery itself failed (never counts as finding a bug).
   */
  kind: 'violation' | 'unknown' | 'stuck' | 'exception' | 'harness';
  message: string;
}

/** Counters that show faults actually met operations (a green run is not vacuous). */
export interface Coverage {
  /** Operations in flight while a DPM crash struck. */
  opsAcrossCrash: number;
  /** Writes in flight while a DPM crash struck. */
  writesAcrossCrash: number;
  /** Operations in flight during a delay window. */
  opsAcrossDelay: number;
  /** Operations in flight while a slot handoff ran. */
  opsAcrossHandoff: number;
  /** Longest handoff, from release to the new owner serving (virtual µs). */
  handoffMaxUs: number;
  /** Operations in flight between a thread's suspicion and the end of its failover. */
  opsAcrossFailover: number;
  /** Longest failover, from suspicion to fenced and merged (virtual µs; includes the lease wait). */
  failoverMaxUs: number;
  /** Requests a thread refused because its lease had run out (a paused thread waking up). */
  leaseRefusals: number;
  /** Threads declared failed while handing slots over (their release was under way). */
  failuresDuringHandoff: number;
  /** Blocks the log cleaner emptied (space reclaimed while the workload ran). */
  blocksCleaned: number;
  /** Block switches that had to wait for the merge (back-pressure). */
  backpressureWaits: number;
  /** Keys read straight from the DPM index at the end (readIndex). */
  durableReads: number;
  /** DINOMO-N mode: keys copied between partitions when threads acquired slots. */
  keysCopied: number;
}

export interface FaultCounts {
  dpmCrash: number;
  delay: number;
  /** Windows in which DPM merge and cleaning tasks ran slow. */
  mergeStall: number;
  /** Slot moves requested: single-slot moves, and the moves of add and remove KN. */
  moveKey: number;
  addKn: number;
  removeKn: number;
  /** Handoffs (one slot set from one thread to another) completed. */
  handoffs: number;
  failKn: number;
  pauseKn: number;
  /** KN threads cut off from the M-node (not from clients) for a while. */
  partitionKn: number;
  /** Threads the failure detector suspected and the M-node failed over (finished failovers). */
  failovers: number;
  /** Failed ranks restarted with the same identity. */
  restarts: number;
  tornWordsDropped: number;
  tornWordsKept: number;
  tornBlocksRecovered: number;
}

export interface RunResult {
  scenario: Scenario;
  ok: boolean;
  failure: RunFailure | null;
  ops: Operation[];
  infoOps: number;
  faults: FaultCounts;
  coverage: Coverage;
  checkerMs: number;
  checkerKeyMs: number[];
  traceHash: string;
  simUs: number;
  events: number;
}

export interface RunOptions {
  mutants?: Mutants;
  /** Engine mode under test (docs/baselines.md); default 'dinomo'. */
  mode?: ClusterMode;
  budgetMsPerKey?: number;
}

/** Environment constants of every scenario (the scenario varies topology, load and faults). */
const env = {
  blockBytes: 4096,
  logBlocksDefault: 224,
  indexBytes: 64 * 1024,
  requestTimeoutMs: 20,
  controlTimeoutMs: 5,
  reconnectRetryUs: 200,
  heartbeatUs: 500,
  leaseUs: 3000,
  suspectAfterUs: 4000,
  workloadLimitUs: 2_000_000,
  quietUs: 20_000,
  finalReadAttempts: 5,
  maxEvents: 3_000_000,
};

/** Codes that guarantee the operation had no effect: it was refused before anything was written. */
/** The old owner's chain merges slowly from this long before a move-key fault with `slowMergeUs`… */
const slowMergeLeadUs = 3000;
/** …until this long after it. */
const slowMergeTailUs = 5000;

const noEffectCodes = new Set(['MOVED', 'OVERLOADED', 'INVALID_KEY', 'INVALID_VALUE']);

interface CrashRecord {
  atNs: number;
}

/**
 * Runs one scenario in the simulator and checks its history. Client processes issue their ops in
 * order; an operation whose outcome is unknown (timeout, DPM unavailable) is recorded as `info` and
 * its process retires (Jepsen semantics), the client continuing under a new process id. After the
 * workload, a quiet period lets recovery and merges finish, then a fresh process reads every key.
 */
export async function runScenario(
  scenario: Scenario,
  options: RunOptions = {},
): Promise<RunResult> {
  const sim = new Simulation(scenario.seed);
  const mutants = options.mutants ?? {};
  const maxKnThreads = scenario.knThreads + extraKnThreads;
  const clover = options.mode === 'clover';
  // Clover mode keeps every version (no cleaning), so it gets more log blocks.
  const logBlocks = (scenario.logBlocks ?? env.logBlocksDefault) * (clover ? 4 : 1);
  const cluster = new SimCluster(sim, {
    mode: options.mode ?? 'dinomo',
    knThreads: scenario.knThreads,
    maxKnThreads,
    clientRetryUs: 50,
    cacheBytesPerThread: scenario.cacheBytesPerThread,
    groupCommitUs: scenario.groupCommitUs,
    groupCommitBytes: 2048,
    recentBlocks: 2,
    inflightMax: 64,
    requestTimeoutMs: env.requestTimeoutMs,
    controlTimeoutMs: env.controlTimeoutMs,
    reconnectRetryUs: env.reconnectRetryUs,
    heartbeatUs: env.heartbeatUs,
    leaseUs: env.leaseUs,
    suspectAfterUs: env.suspectAfterUs,
    network: { minDelayUs: 2, maxDelayUs: 40, choices: scenario.choices },
    dpm: {
      regionBytes: regionBytesFor(maxKnThreads, logBlocks),
      blockBytes: env.blockBytes,
      indexBytes: env.indexBytes,
      taskUsMin: 5,
      taskUsMax: 80,
      mergeBatchEntries: 8,
      maxConcurrentMerges: 2,
      tickUs: 500,
    },
    mutants,
  });
  const ops: Operation[] = [];
  const crashes: CrashRecord[] = [];
  const delays: Array<{ fromNs: number; toNs: number }> = [];
  let failure: RunFailure | null = null;
  const reconfig: ReconfigCounts = {
    mergeStalls: 0,
    moves: 0,
    addKn: 0,
    removeKn: 0,
    failKn: 0,
    pauseKn: 0,
    partitions: 0,
  };
  const limits = { untilUs: env.workloadLimitUs, maxEvents: env.maxEvents };
  let durableReads = 0;
  try {
    let started = false;
    void cluster.start().then(() => (started = true));
    await sim.run(limits, () => started);
    if (!started) throw new Error('the cluster did not start');
    const t0 = sim.nowUs();
    scheduleFaults(scenario, cluster, t0, crashes, delays, reconfig);
    const recorder = new Recorder(sim, ops, scenario.clients.length);
    let running = scenario.clients.length;
    scenario.clients.forEach((list, c) => {
      void runClient(sim, cluster.client(), recorder, scenario, c, list).finally(() => running--);
    });
    const why = await sim.run(limits, () => running === 0);
    if (why !== 'done') throw new Error(`the workload did not finish (${why})`);
    // Quiet period: no new faults; the DPM comes back if it is down; merges, recovery and
    // reconfiguration finish.
    if (!cluster.dpm.up) cluster.dpm.restart();
    await sim.run({ ...limits, untilUs: sim.nowUs() + env.quietUs });
    // Failed ranks come back with the same identity, so every slot has a live owner again.
    cluster.threads.forEach((_, rank) => cluster.restartKn(rank));
    await sim.run({ ...limits, untilUs: sim.nowUs() + env.quietUs });
    await sim.run({ ...limits, untilUs: sim.nowUs() + 1_000_000 }, () => !cluster.monitor.busy);
    const finalOk = await finalReads(sim, cluster.client(), recorder, scenario, limits);
    durableReads = await readIndex(sim, cluster, recorder, scenario, limits, options.mode);
    if (cluster.errors.length > 0) {
      const err = cluster.errors[0];
      failure = {
        kind: 'exception',
        message: err instanceof Error ? (err.stack ?? err.message) : String(err),
      };
    } else if (cluster.monitor.busy) {
      failure = { kind: 'stuck', message: `a slot move never finished: ${cluster.describe()}` };
    } else if (!finalOk) {
      failure = {
        kind: 'stuck',
        message: `final reads kept failing after the quiet period: ${cluster.describe()}`,
      };
    }
  } catch (err) {
    failure = {
      kind: 'exception',
      message: err instanceof Error ? (err.stack ?? err.message) : String(err),
    };
  }
  const started = performance.now();
  let check: CheckResult | null = null;
  try {
    check = checkHistory(ops, { budgetMsPerKey: options.budgetMsPerKey ?? 2000 });
  } catch (err) {
    failure ??= { kind: 'harness', message: `checker: ${String(err)}` };
  }
  const checkerMs = performance.now() - started;
  if (check !== null && !check.ok && failure === null) {
    const bad = check.violations[0];
    failure = {
      kind: bad === undefined ? 'unknown' : 'violation',
      message:
        bad === undefined
          ? `${check.unknown} key(s) ran out of checker budget`
          : `key ${bad.key} is not linearizable\n${bad.witness === null ? '' : formatWitness(bad.witness, ops)}`,
    };
  }
  const dpmStats = cluster.dpm.collectStats();
  const handoffs = cluster.monitor.moves.map((m) => ({
    fromNs: m.startUs * 1000,
    toNs: (m.doneUs ?? sim.nowUs()) * 1000,
  }));
  const failovers = cluster.monitor.failovers.map((f) => ({
    fromNs: f.suspectedUs * 1000,
    toNs: (f.failedOverUs ?? sim.nowUs()) * 1000,
  }));
  const coverage = coverageOf(ops, crashes, delays, handoffs, failovers);
  coverage.handoffMaxUs = Math.max(0, ...handoffs.map((h) => (h.toNs - h.fromNs) / 1000));
  coverage.failoverMaxUs = Math.max(0, ...failovers.map((h) => (h.toNs - h.fromNs) / 1000));
  coverage.failuresDuringHandoff = cluster.monitor.failovers.filter((f) =>
    cluster.monitor.moves.some(
      (m) =>
        m.move.from === f.rank &&
        m.startUs <= f.suspectedUs &&
        (m.doneUs === null || f.suspectedUs <= m.doneUs),
    ),
  ).length;
  coverage.blocksCleaned = dpmStats.blocksCleaned;
  coverage.durableReads = durableReads;
  const statSum = (stat: number): number =>
    cluster.threadStats.reduce((n, t) => n + (t[stat] as number), 0);
  coverage.backpressureWaits = statSum(ThreadStat.backpressureWaits);
  coverage.leaseRefusals = statSum(ThreadStat.leaseRefusals);
  coverage.keysCopied = statSum(ThreadStat.keysCopied);
  return {
    scenario,
    ok: failure === null,
    failure,
    ops,
    infoOps: ops.filter((o) => o.status === 'info').length,
    faults: {
      dpmCrash: dpmStats.crashes,
      delay: delays.length,
      mergeStall: reconfig.mergeStalls,
      moveKey: reconfig.moves,
      addKn: reconfig.addKn,
      removeKn: reconfig.removeKn,
      handoffs: cluster.monitor.moves.filter((m) => m.doneUs !== null).length,
      failKn: reconfig.failKn,
      pauseKn: reconfig.pauseKn,
      partitionKn: reconfig.partitions,
      failovers: cluster.monitor.failovers.filter((f) => f.failedOverUs !== null).length,
      restarts: cluster.restarts,
      tornWordsDropped: dpmStats.tornWordsDropped,
      tornWordsKept: dpmStats.tornWordsKept,
      tornBlocksRecovered: dpmStats.recoveries.reduce((n, r) => n + r.tornBlocks, 0),
    },
    coverage,
    checkerMs,
    checkerKeyMs: check?.keys.map((k) => k.ms) ?? [],
    traceHash: sim.traceHash,
    simUs: sim.nowUs(),
    events: sim.eventCount,
  };
}

/** The region size that holds exactly `logBlocks` blocks after the metadata and the index. */
function regionBytesFor(chains: number, logBlocks: number): number {
  return (
    4096 +
    metadataBytes(chains) +
    align(chains * Chain.bytes, 4096) +
    align(env.indexBytes, 4096) +
    logBlocks * env.blockBytes
  );
}

interface ReconfigCounts {
  mergeStalls: number;
  moves: number;
  addKn: number;
  removeKn: number;
  failKn: number;
  pauseKn: number;
  partitions: number;
}

function scheduleFaults(
  scenario: Scenario,
  cluster: SimCluster,
  t0: number,
  crashes: CrashRecord[],
  delays: Array<{ fromNs: number; toNs: number }>,
  counts: ReconfigCounts,
): void {
  const { sim, dpm, network } = cluster;
  let downUs = 0;
  dpm.onCrash = () => {
    crashes.push({ atNs: sim.nowUs() * 1000 });
    sim.schedule(downUs, 'fault:dpm-restart', () => dpm.restart());
  };
  for (const fault of scenario.faults) {
    if (fault.type === 'dpm-crash') {
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:dpm-crash', () => {
        downUs = fault.downUs;
        dpm.armCrash(fault.point);
        // If no KN operation of that kind comes soon, the crash strikes anyway.
        sim.schedule(300, 'fault:dpm-crash-now', () => {
          if (dpm.up && dpm.armedPoint === fault.point) dpm.crash();
        });
      });
    } else if (fault.type === 'move-key') {
      const slowUs = fault.slowMergeUs ?? 0;
      if (slowUs > 0) {
        // The owner's log falls behind before the move, so the move leaves much of it unmerged.
        const fromUs = t0 + Math.max(0, fault.atUs - slowMergeLeadUs);
        sim.schedule(fromUs - sim.nowUs(), 'fault:slow-merge', () => {
          const owner = cluster.plannedOwner(
            slotOfKey(Buffer.from(`k${fault.key % scenario.keys}`)),
          );
          dpm.addStall(fromUs, t0 + fault.atUs + slowMergeTailUs, slowUs, owner);
        });
      }
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:move-key', () => {
        const slot = slotOfKey(Buffer.from(`k${fault.key % scenario.keys}`));
        const live = cluster.liveRanks.filter((r) => r !== cluster.plannedOwner(slot));
        const from = cluster.plannedOwner(slot);
        const to = live[fault.offset % Math.max(1, live.length)];
        if (to === undefined || !cluster.moveSlot(slot, to)) return;
        counts.moves++;
        if (fault.returnAfterUs > 0) {
          sim.schedule(fault.returnAfterUs, 'fault:move-key-back', () => {
            if (cluster.moveSlot(slot, from)) counts.moves++;
          });
        }
      });
    } else if (fault.type === 'merge-stall') {
      const fromUs = t0 + fault.atUs;
      dpm.addStall(fromUs, fromUs + fault.durationUs, fault.extraUs, fault.chain ?? null);
      counts.mergeStalls++;
    } else if (fault.type === 'add-kn') {
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:add-kn', () => {
        if (cluster.addKn()) counts.addKn++;
      });
    } else if (fault.type === 'remove-kn') {
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:remove-kn', () => {
        const rank = cluster.liveRanks[fault.which % cluster.liveRanks.length];
        if (rank !== undefined && cluster.removeKn(rank)) counts.removeKn++;
      });
    } else if (fault.type === 'partition-kn') {
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:partition-kn', () => {
        const rank = cluster.liveRanks[fault.which % cluster.liveRanks.length];
        if (rank === undefined) return;
        const now = sim.nowUs();
        network.addPartition({
          a: knNode(rank),
          b: monitorNode,
          fromUs: now,
          toUs: now + fault.durationUs,
        });
        counts.partitions++;
      });
    } else if (fault.type === 'fail-kn') {
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:fail-kn', () => {
        const rank = cluster.liveRanks[fault.which % cluster.liveRanks.length];
        if (rank === undefined || !cluster.failKn(rank)) return;
        counts.failKn++;
        if (fault.restartAfterUs > 0) cluster.restartAfterFailover(rank, fault.restartAfterUs);
      });
    } else if (fault.type === 'pause-kn') {
      sim.schedule(t0 + fault.atUs - sim.nowUs(), 'fault:pause-kn', () => {
        const rank = cluster.liveRanks[fault.which % cluster.liveRanks.length];
        if (rank === undefined || !cluster.pauseKn(rank, fault.durationUs)) return;
        counts.pauseKn++;
        if (fault.restartAfterUs > 0) cluster.restartAfterFailover(rank, fault.restartAfterUs);
      });
    } else {
      const node =
        fault.node === 'dpm'
          ? dpmNode
          : fault.node === 'client'
            ? clientNode
            : knNode(fault.node % scenario.knThreads);
      const fromUs = t0 + fault.atUs;
      network.addDelayWindow({
        node,
        fromUs,
        toUs: fromUs + fault.durationUs,
        extraUs: fault.extraUs,
      });
      delays.push({ fromNs: fromUs * 1000, toNs: (fromUs + fault.durationUs) * 1000 });
    }
  }
}

/** Assigns process ids and records completed operations. */
class Recorder {
  private nextProcess: number;
  private nextId = 0;
  private readonly sim: Simulation;
  private readonly ops: Operation[];

  constructor(sim: Simulation, ops: Operation[], firstFreeProcess: number) {
    this.sim = sim;
    this.ops = ops;
    this.nextProcess = firstFreeProcess;
  }

  newProcess(): number {
    return this.nextProcess++;
  }

  /** Runs one operation as `process`; returns the status it was recorded with. */
  async perform(
    client: KvClient,
    process: number,
    f: OpKind,
    key: string,
    putValue: string | null,
  ): Promise<OpStatus> {
    const call = this.sim.nowUs() * 1000;
    let status: OpStatus = 'ok';
    let value: string | null = f === 'put' ? putValue : null;
    let existed: boolean | null = null;
    try {
      if (f === 'put') await client.put(key, putValue as string);
      else if (f === 'get') {
        const got = await client.get(key);
        value = got === null ? null : got.toString('latin1');
      } else existed = await client.delete(key);
    } catch (err) {
      const noEffect = isDinomoError(err) && noEffectCodes.has(err.code);
      status = noEffect || f === 'get' ? 'fail' : 'info';
      if (f === 'get') value = null;
    }
    const ret = this.sim.nowUs() * 1000;
    this.sim.mix(`${process}:${f}:${key}:${status}:${value ?? '-'}`);
    this.ops.push({ id: this.nextId++, process, f, key, value, existed, call, ret, status });
    return status;
  }

  /** Records a read that took no time (one done outside the system, such as readIndex). */
  record(process: number, f: 'get', key: string, value: string | null): void {
    const at = this.sim.nowUs() * 1000;
    this.sim.mix(`${process}:${f}:${key}:ok:${value ?? '-'}`);
    this.ops.push({
      id: this.nextId++,
      process,
      f,
      key,
      value,
      existed: null,
      call: at,
      ret: at,
      status: 'ok',
    });
  }
}

async function runClient(
  sim: Simulation,
  client: KvClient,
  recorder: Recorder,
  scenario: Scenario,
  c: number,
  list: readonly Scenario['clients'][number][number][],
): Promise<void> {
  let process = c;
  for (let i = 0; i < list.length; i++) {
    const op = list[i] as Scenario['clients'][number][number];
    if (op.thinkUs > 0) await sim.sleep(op.thinkUs);
    const key = `k${op.key}`;
    const value = op.f === 'put' ? putValue(c, i, scenario.valueBytes) : null;
    const status = await recorder.perform(client, process, op.f, key, value);
    if (status === 'info') process = recorder.newProcess();
  }
}

/** A value unique in the whole history (client and op index), padded to the scenario's size. */
function putValue(client: number, index: number, bytes: number): string {
  const id = `c${client}o${index}:`;
  return id.length >= bytes ? id : id + 'x'.repeat(bytes - id.length);
}

/** Reads every key once more from a fresh process (retrying failed reads); false if one never succeeds. */
async function finalReads(
  sim: Simulation,
  client: KvClient,
  recorder: Recorder,
  scenario: Scenario,
  limits: { untilUs: number; maxEvents: number },
): Promise<boolean> {
  let pending = scenario.keys;
  let allRead = true;
  for (let k = 0; k < scenario.keys; k++) {
    const process = recorder.newProcess();
    void (async () => {
      let ok = false;
      for (let attempt = 0; attempt < env.finalReadAttempts && !ok; attempt++) {
        ok = (await recorder.perform(client, process, 'get', `k${k}`, null)) === 'ok';
        if (!ok) await sim.sleep(5000);
      }
      if (!ok) allRead = false;
      pending--;
    })();
  }
  await sim.run({ ...limits, untilUs: sim.nowUs() + 1_000_000 }, () => pending === 0);
  return allRead && pending === 0;
}

/**
 * Once every chain is merged, reads every key straight from the DPM index, past every cache, and
 * records the reads in the history: the durable state must be the linearized one too (a cache can
 * hide an index that lost or resurrected a version until the key leaves it). Returns the number of
 * keys read: 0 when the merges did not catch up (the index may then lack acknowledged writes that
 * the logs still hold, so reading it proves nothing).
 */
async function readIndex(
  sim: Simulation,
  cluster: SimCluster,
  recorder: Recorder,
  scenario: Scenario,
  limits: { untilUs: number; maxEvents: number },
  mode: RunOptions['mode'],
): Promise<number> {
  await sim.run({ ...limits, untilUs: sim.nowUs() + 1_000_000 }, () => cluster.dpm.allMerged);
  if (!cluster.dpm.allMerged) return 0;
  const { dpm } = cluster;
  const fabric = new LocalFabric(dpm.sab);
  const reader = new IndexReader(fabric, dpm.region.geometry);
  const walker = new ChainWalker(fabric, dpm.region.geometry);
  const process = recorder.newProcess();
  const tagged = new Uint8Array(partitionedKeyBytesMax);
  for (let k = 0; k < scenario.keys; k++) {
    const plain = Buffer.from(`k${k}`);
    // DINOMO-N mode: the key's owner holds it in its partition, under its tag.
    const owner = cluster.slotMap[slotOfKey(plain)] as number;
    const key = mode === 'dinomo-n' ? tagKey(owner, plain, tagged) : plain;
    let value = reader.lookup(key, hashKey(key))
      ? Buffer.from(reader.value).toString('latin1')
      : null;
    if (value !== null && reader.linked) {
      // Clover mode: the index may trail the chain; the newest version is at its end.
      const r = reader;
      walker.adopt(r.entryOffset, r.entryBytes, r.op, r.generation, r.link, r.value);
      if (!walker.follow(key)) throw new Error(`the version chain of k${k} is broken`);
      value = walker.op === EntryOp.put ? Buffer.from(walker.value).toString('latin1') : null;
    }
    recorder.record(process, 'get', `k${k}`, value);
  }
  return scenario.keys;
}

function coverageOf(
  ops: readonly Operation[],
  crashes: readonly CrashRecord[],
  delays: ReadonlyArray<{ fromNs: number; toNs: number }>,
  handoffs: ReadonlyArray<{ fromNs: number; toNs: number }>,
  failovers: ReadonlyArray<{ fromNs: number; toNs: number }>,
): Coverage {
  const coverage: Coverage = {
    opsAcrossCrash: 0,
    writesAcrossCrash: 0,
    opsAcrossDelay: 0,
    opsAcrossHandoff: 0,
    handoffMaxUs: 0,
    opsAcrossFailover: 0,
    failoverMaxUs: 0,
    leaseRefusals: 0,
    failuresDuringHandoff: 0,
    blocksCleaned: 0,
    backpressureWaits: 0,
    durableReads: 0,
    keysCopied: 0,
  };
  for (const op of ops) {
    if (crashes.some((c) => op.call <= c.atNs && c.atNs <= op.ret)) {
      coverage.opsAcrossCrash++;
      if (op.f !== 'get') coverage.writesAcrossCrash++;
    }
    if (delays.some((d) => op.call <= d.toNs && d.fromNs <= op.ret)) coverage.opsAcrossDelay++;
    if (handoffs.some((h) => op.call <= h.toNs && h.fromNs <= op.ret)) coverage.opsAcrossHandoff++;
    if (failovers.some((h) => op.call <= h.toNs && h.fromNs <= op.ret)) {
      coverage.opsAcrossFailover++;
    }
  }
  return coverage;
}
