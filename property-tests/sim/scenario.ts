import fc from 'fast-check';
import type { Mutants } from '../../src/config/mutants.js';
import type { CrashPoint } from '../../src/sim/index.js';

/** One client operation of a scenario: what to do, on which key, after how long a pause. */
export interface ScenarioOp {
  f: 'get' | 'put' | 'delete';
  key: number;
  thinkUs: number;
}

/** A DPM crash armed at `atUs` (after the workload starts), striking at `point`, down `downUs`. */
export interface CrashFault {
  type: 'dpm-crash';
  atUs: number;
  point: CrashPoint;
  downUs: number;
}

/** Messages to and from `node` take `extraUs` longer during the window (a stall or slow link). */
export interface DelayFault {
  type: 'delay';
  atUs: number;
  durationUs: number;
  extraUs: number;
  /** 'dpm', 'client', or a KN thread rank. */
  node: 'dpm' | 'client' | number;
}

/** Moves the slot of key `k${key}` to another thread (`offset` picks which, modulo the live ones). */
export interface MoveKeyFault {
  type: 'move-key';
  atUs: number;
  key: number;
  offset: number;
  /** When > 0, the slot moves back to its previous owner this long after the first move began. */
  returnAfterUs: number;
  /**
   * When > 0, the old owner's chain merges slowly for a while from the move on (each of its merge
   * tasks takes this much longer), so the new owner's writes of the slot reach the index first.
   */
  slowMergeUs?: number;
}

/** Adds a KN thread at run time; about 1/N of the slots move to it. */
export interface AddKnFault {
  type: 'add-kn';
  atUs: number;
}

/** Removes a KN thread (the live one at index `which` modulo their count): its slots move away. */
export interface RemoveKnFault {
  type: 'remove-kn';
  atUs: number;
  which: number;
}

/**
 * DPM merge and cleaning tasks take `extraUs` longer during the window (a busy DPM); with `chain`,
 * only the merges of that chain rank (a slow merge worker, which other chains overtake).
 */
export interface MergeStallFault {
  type: 'merge-stall';
  atUs: number;
  durationUs: number;
  extraUs: number;
  chain?: number | null;
}

/**
 * Kills the process of a KN thread (the live one at index `which` modulo their count). The failure
 * detector notices, the M-node fails it over; when `restartAfterUs` > 0 the rank restarts with the
 * same identity that long after its failover.
 */
export interface FailKnFault {
  type: 'fail-kn';
  atUs: number;
  which: number;
  restartAfterUs: number;
}

/**
 * Stops a KN thread for `durationUs` and lets it run on (a zombie when the pause outlasts its lease
 * and the failure detector). When `restartAfterUs` > 0, a new incarnation of the rank starts that
 * long after the failover, possibly while the old one still sleeps (an orchestrator replacing a
 * process it cannot reach): fencing must keep the old one from writing.
 */
export interface PauseKnFault {
  type: 'pause-kn';
  atUs: number;
  which: number;
  durationUs: number;
  restartAfterUs: number;
}

/**
 * Cuts a KN thread (the live one at index `which`) off from the M-node only: clients still reach
 * it, its heartbeats do not. Its lease runs out and the M-node fails it over while it still runs.
 */
export interface PartitionFault {
  type: 'partition-kn';
  atUs: number;
  which: number;
  durationUs: number;
}

export type Fault =
  | PartitionFault
  | CrashFault
  | DelayFault
  | MergeStallFault
  | MoveKeyFault
  | AddKnFault
  | RemoveKnFault
  | FailKnFault
  | PauseKnFault;

/** Threads a scenario may add beyond its initial ones. */
export const extraKnThreads = 2;

/**
 * A whole simulated run as data: topology, workload, faults and delivery choices. fast-check
 * generates and shrinks it; the simulator runs it (run-scenario.ts); the same scenario always gives
 * the same run. Failing scenarios are stored as JSON under property-tests/regressions/.
 */
export interface Scenario {
  seed: number;
  knThreads: number;
  cacheBytesPerThread: number;
  groupCommitUs: number;
  keys: number;
  valueBytes: number;
  /**
   * 4 KiB log blocks in the region (absent in older stored scenarios: 224). Few blocks force
   * back-pressure, block reuse and log cleaning within a short run.
   */
  logBlocks?: number;
  clients: ScenarioOp[][];
  faults: Fault[];
  /** Network delivery choices (see NetworkOptions.choices). */
  choices: number[];
}

export interface ScenarioSizes {
  clientsMin: number;
  clientsMax: number;
  opsPerClientMin: number;
  opsPerClientMax: number;
  faultsMax: number;
}

export const fastTierSizes: ScenarioSizes = {
  clientsMin: 3,
  clientsMax: 6,
  opsPerClientMin: 40,
  opsPerClientMax: 110,
  faultsMax: 8,
};

const crashPoints: readonly CrashPoint[] = [
  'before-persist',
  'before-persist',
  'before-commit-word',
  'before-write',
  'idle',
];

function opArb(keys: number): fc.Arbitrary<ScenarioOp> {
  return fc.record({
    f: fc.constantFrom<ScenarioOp['f']>('get', 'get', 'put', 'put', 'delete'),
    key: fc.nat({ max: keys - 1 }),
    thinkUs: fc.nat({ max: 60 }),
  });
}

function faultArb(knThreads: number, workloadUs: number): fc.Arbitrary<Fault> {
  const crash: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('dpm-crash' as const),
    atUs: fc.nat({ max: workloadUs }),
    point: fc.constantFrom(...crashPoints),
    downUs: fc.integer({ min: 50, max: 3000 }),
  });
  const delay: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('delay' as const),
    atUs: fc.nat({ max: workloadUs }),
    durationUs: fc.integer({ min: 100, max: 3000 }),
    extraUs: fc.integer({ min: 50, max: 2000 }),
    node: fc.oneof(
      fc.constantFrom<'dpm' | 'client'>('dpm', 'client'),
      fc.nat({ max: knThreads - 1 }),
    ),
  });
  const moveKey: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('move-key' as const),
    atUs: fc.nat({ max: workloadUs }),
    key: fc.nat({ max: 7 }),
    offset: fc.nat({ max: 5 }),
    // 1: straight back, queued behind the first move (the slot returns the moment it settled).
    returnAfterUs: fc.oneof(
      { arbitrary: fc.constant(0), weight: 1 },
      { arbitrary: fc.constant(1), weight: 2 },
      { arbitrary: fc.integer({ min: 100, max: 4000 }), weight: 1 },
    ),
    slowMergeUs: fc.oneof(
      { arbitrary: fc.constant(0), weight: 1 },
      { arbitrary: fc.integer({ min: 500, max: 3000 }), weight: 2 },
    ),
  });
  const addKn: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('add-kn' as const),
    atUs: fc.nat({ max: workloadUs }),
  });
  const removeKn: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('remove-kn' as const),
    atUs: fc.nat({ max: workloadUs }),
    which: fc.nat({ max: 5 }),
  });
  const stall: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('merge-stall' as const),
    atUs: fc.nat({ max: workloadUs }),
    durationUs: fc.integer({ min: 500, max: 5000 }),
    extraUs: fc.integer({ min: 200, max: 3000 }),
    chain: fc.oneof(fc.constant(null), fc.nat({ max: 5 })),
  });
  const failKn: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('fail-kn' as const),
    atUs: fc.nat({ max: workloadUs }),
    which: fc.nat({ max: 5 }),
    restartAfterUs: fc.oneof(fc.constant(0), fc.integer({ min: 100, max: 4000 })),
  });
  const pauseKn: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('pause-kn' as const),
    atUs: fc.nat({ max: workloadUs }),
    which: fc.nat({ max: 5 }),
    // Short pauses only cost the lease; long ones outlast suspicion, and the longest outlast the
    // clients' request timeout, so clients move on to the new owner while the zombie sleeps.
    durationUs: fc.oneof(
      fc.integer({ min: 300, max: 6000 }),
      fc.integer({ min: 6000, max: 40_000 }),
    ),
    restartAfterUs: fc.oneof(fc.constant(0), fc.integer({ min: 100, max: 4000 })),
  });
  const partition: fc.Arbitrary<Fault> = fc.record({
    type: fc.constant('partition-kn' as const),
    atUs: fc.nat({ max: workloadUs }),
    which: fc.nat({ max: 5 }),
    durationUs: fc.integer({ min: 1000, max: 15_000 }),
  });
  return fc.oneof(
    { arbitrary: partition, weight: 2 },
    { arbitrary: failKn, weight: 2 },
    { arbitrary: pauseKn, weight: 2 },
    { arbitrary: stall, weight: 2 },
    { arbitrary: crash, weight: 3 },
    { arbitrary: delay, weight: 2 },
    { arbitrary: moveKey, weight: 4 },
    { arbitrary: addKn, weight: 1 },
    { arbitrary: removeKn, weight: 1 },
  );
}

/** The scenario generator. Keys are few so that operations on one key overlap often. */
export function scenarioArb(sizes: ScenarioSizes = fastTierSizes): fc.Arbitrary<Scenario> {
  return fc
    .record({
      seed: fc.nat(),
      knThreads: fc.integer({ min: 1, max: 4 }),
      cacheBytesPerThread: fc.constantFrom(0, 4096, 65536),
      groupCommitUs: fc.integer({ min: 5, max: 120 }),
      keys: fc.integer({ min: 2, max: 8 }),
      valueBytes: fc.integer({ min: 8, max: 48 }),
      logBlocks: fc.oneof(fc.integer({ min: 12, max: 40 }), fc.constant(224)),
    })
    .chain((base) =>
      fc.record({
        seed: fc.constant(base.seed),
        knThreads: fc.constant(base.knThreads),
        cacheBytesPerThread: fc.constant(base.cacheBytesPerThread),
        groupCommitUs: fc.constant(base.groupCommitUs),
        keys: fc.constant(base.keys),
        valueBytes: fc.constant(base.valueBytes),
        logBlocks: fc.constant(Math.max(base.logBlocks, 2 * (base.knThreads + extraKnThreads) + 6)),
        clients: fc.array(
          fc.array(opArb(base.keys), {
            minLength: sizes.opsPerClientMin,
            maxLength: sizes.opsPerClientMax,
          }),
          { minLength: sizes.clientsMin, maxLength: sizes.clientsMax },
        ),
        faults: fc.array(faultArb(base.knThreads, 6000), { maxLength: sizes.faultsMax }),
        choices: fc.array(fc.nat({ max: 1000 }), { maxLength: 64 }),
      }),
    );
}

/** The mutants a scenario runs with (none for the real system). */
export type ScenarioMutants = Mutants;
