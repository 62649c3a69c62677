/**
 * Test doubles for the benchmark: a virtual clock that a driver advances from timer to timer, and an
 * in-memory BenchTarget whose operations take a fixed virtual latency and count round trips like a
 * tiny cache in front of a DPM would.
 */
import type { Clock, TimerHandle } from '../../../src/time/index.js';
import type {
  BenchCluster,
  BenchClusterClass,
  BenchClusterOptions,
  BenchKey,
  BenchStats,
  BenchValue,
  ElasticCluster,
  ElasticClusterClass,
  KnChangeReport,
} from '../../../src/bench/index.js';

interface PendingTimer {
  atUs: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private now = 0;
  private seq = 0;
  private timers: PendingTimer[] = [];

  nowUs(): number {
    return this.now;
  }

  setTimer(delayUs: number, callback: () => void): TimerHandle {
    const timer = {
      atUs: this.now + Math.max(0, delayUs),
      seq: this.seq++,
      callback,
      cancelled: false,
    };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time to the earliest pending timer and fires every timer due then; false if none is pending. */
  fireNext(): boolean {
    this.timers = this.timers.filter((t) => !t.cancelled);
    if (this.timers.length === 0) return false;
    const atUs = Math.min(...this.timers.map((t) => t.atUs));
    const due = this.timers.filter((t) => t.atUs === atUs).sort((a, b) => a.seq - b.seq);
    this.timers = this.timers.filter((t) => t.atUs !== atUs);
    this.now = Math.max(this.now, atUs);
    for (const timer of due) if (!timer.cancelled) timer.callback();
    return true;
  }
}

/** Lets microtasks settle, then advances virtual time one timer at a time until `work` settles. */
export async function drive<T>(clock: VirtualClock, work: Promise<T>): Promise<T> {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  while (!settled) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!settled && !clock.fireNext()) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (!settled)
        throw new Error('virtual run is stuck: no timer pending and the work has not settled');
    }
  }
  return work;
}

export type FakeOpKind = 'get' | 'put' | 'delete';

export interface FakeTargetOptions {
  clock: VirtualClock;
  latencyUs?: number;
  /** Called before each operation; throw from it to inject an error. */
  beforeOp?: (kind: FakeOpKind, key: string) => void;
  /** Never answer operations issued at or after this virtual time. */
  hangAfterUs?: number;
}

function keyString(key: BenchKey): string {
  return typeof key === 'string' ? key : new TextDecoder().decode(key);
}

/**
 * A Map-based store. Round trips: a put or a delete costs 1; a get of a key not read since its last
 * write is a miss costing 3 (and then cached); a repeated get is a value hit costing 0.
 */
export class FakeTarget implements BenchCluster {
  readonly data = new Map<string, Uint8Array>();
  readonly cached = new Set<string>();
  stopped = false;
  /** Like `beforeOp`, but can be set after construction. */
  beforeOpHook: ((kind: FakeOpKind, key: string) => void) | null = null;
  inFlight = 0;
  maxInFlight = 0;
  private readonly counters = {
    gets: 0,
    puts: 0,
    deletes: 0,
    rts: 0,
    value: 0,
    miss: 0,
    notFound: 0,
  };

  constructor(private readonly options: FakeTargetOptions) {}

  client(): FakeTarget {
    return this;
  }

  async put(key: BenchKey, value: BenchValue): Promise<void> {
    const name = keyString(key);
    await this.enter('put', name);
    this.data.set(name, typeof value === 'string' ? new TextEncoder().encode(value) : value);
    this.cached.delete(name);
    this.counters.puts++;
    this.counters.rts += 1;
  }

  /** A delete costs 1 round trip, like a put, and reports whether the key held a value. */
  async delete(key: BenchKey): Promise<boolean> {
    const name = keyString(key);
    await this.enter('delete', name);
    this.cached.delete(name);
    this.counters.deletes++;
    this.counters.rts += 1;
    return this.data.delete(name);
  }

  async get(key: BenchKey): Promise<Uint8Array | null> {
    const name = keyString(key);
    await this.enter('get', name);
    this.counters.gets++;
    const value = this.data.get(name) ?? null;
    if (value === null) this.counters.notFound++;
    else if (this.cached.has(name)) this.counters.value++;
    else {
      this.counters.miss++;
      this.counters.rts += 3;
      this.cached.add(name);
    }
    return value;
  }

  stats(): BenchStats {
    const c = this.counters;
    const total = c.gets + c.puts + c.deletes;
    let bytesUsed = 0;
    for (const value of this.data.values()) bytesUsed += value.length;
    return {
      ops: { gets: c.gets, puts: c.puts, deletes: c.deletes, total },
      rts: { total: c.rts, perOp: total > 0 ? c.rts / total : 0 },
      hits: { value: c.value, shortcut: 0, log: 0, miss: c.miss, notFound: c.notFound },
      missCostRts: c.miss > 0 ? 3 : 0,
      dpm: { bytesUsed },
      cache: { bytesUsed: this.cached.size * 100 },
    };
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }

  private async enter(kind: FakeOpKind, key: string): Promise<void> {
    const { clock, hangAfterUs } = this.options;
    this.options.beforeOp?.(kind, key);
    this.beforeOpHook?.(kind, key);
    if (hangAfterUs !== undefined && clock.nowUs() >= hangAfterUs)
      await new Promise<never>(() => undefined);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await new Promise<void>((resolve) => clock.setTimer(this.options.latencyUs ?? 100, resolve));
    this.inFlight--;
  }
}

/** A Cluster class whose `start` hands out FakeTargets and remembers the options it got. */
export function fakeClusterClass(
  options: FakeTargetOptions & { startError?: Error },
): BenchClusterClass & {
  started: BenchClusterOptions[];
  instances: FakeTarget[];
} {
  const started: BenchClusterOptions[] = [];
  const instances: FakeTarget[] = [];
  return {
    started,
    instances,
    start(clusterOptions: BenchClusterOptions): Promise<BenchCluster> {
      started.push(clusterOptions);
      if (options.startError !== undefined) return Promise.reject(options.startError);
      const target = new FakeTarget(options);
      instances.push(target);
      return Promise.resolve(target);
    },
  };
}

export interface FakeElasticOptions extends FakeTargetOptions {
  /** KNs at start (ids 0 .. kns-1); default 1. */
  kns?: number;
  /** Virtual time each KN change takes; default 5000 µs. */
  changeUs?: number;
}

/**
 * A FakeTarget with KNs that can be added, removed and failed. It keeps no real placement: a change
 * takes `changeUs` of virtual time, reports 64 slots moved, and is recorded in `calls`.
 */
export class FakeElasticCluster extends FakeTarget implements ElasticCluster {
  /** Every KN call and `stop`, in order: `addKn`, `removeKn(3)`, `failKn(0)`, `stop`. */
  readonly calls: string[] = [];
  private readonly live: number[];
  private nextId: number;

  constructor(private readonly elastic: FakeElasticOptions) {
    super(elastic);
    const kns = elastic.kns ?? 1;
    this.live = Array.from({ length: kns }, (_, id) => id);
    this.nextId = kns;
  }

  knIds(): number[] {
    return [...this.live];
  }

  async addKn(): Promise<KnChangeReport> {
    this.calls.push('addKn');
    await this.change();
    const knId = this.nextId++;
    this.live.push(knId);
    return { knId, slotsMoved: 64, durationMs: (this.elastic.changeUs ?? 5000) / 1000 };
  }

  async removeKn(knId: number): Promise<KnChangeReport> {
    this.calls.push(`removeKn(${knId})`);
    return this.drop(knId);
  }

  async failKn(knId: number): Promise<KnChangeReport> {
    this.calls.push(`failKn(${knId})`);
    return this.drop(knId);
  }

  override stop(): Promise<void> {
    this.calls.push('stop');
    return super.stop();
  }

  private async drop(knId: number): Promise<KnChangeReport> {
    const index = this.live.indexOf(knId);
    if (index === -1) throw new Error(`KN ${knId} is not live`);
    if (this.live.length === 1) throw new Error('the last KN cannot go');
    await this.change();
    this.live.splice(index, 1);
    return { knId, slotsMoved: 64, durationMs: (this.elastic.changeUs ?? 5000) / 1000 };
  }

  private change(): Promise<void> {
    return new Promise((resolve) =>
      this.elastic.clock.setTimer(this.elastic.changeUs ?? 5000, resolve),
    );
  }
}

/** An elastic Cluster class whose `start` hands out FakeElasticClusters. */
export function fakeElasticClusterClass(
  options: FakeElasticOptions & { startError?: Error },
): ElasticClusterClass & {
  started: BenchClusterOptions[];
  instances: FakeElasticCluster[];
} {
  const started: BenchClusterOptions[] = [];
  const instances: FakeElasticCluster[] = [];
  return {
    started,
    instances,
    start(clusterOptions: BenchClusterOptions): Promise<ElasticCluster> {
      started.push(clusterOptions);
      if (options.startError !== undefined) return Promise.reject(options.startError);
      const cluster = new FakeElasticCluster({ ...options, kns: clusterOptions.kns ?? 1 });
      instances.push(cluster);
      return Promise.resolve(cluster);
    },
  };
}
