import { DinomoError } from '../errors/index.js';
import { SeededRandom } from '../util/index.js';
import { ValueFactory } from './values.js';
import { LatestGenerator, ZipfGenerator, defaultKeyPrefix, keyName } from './zipf.js';

/**
 * Where the keys of gets, puts and deletes come from. `zipf` and `uniform` draw from the loaded keys
 * 0 .. keys-1 only; `latest` is YCSB's: a Zipf draw over recency across every key that exists now,
 * inserted ones included, so the newest key is the most popular.
 */
export type RequestDistribution = 'zipf' | 'uniform' | 'latest';

export const requestDistributions: readonly RequestDistribution[] = ['zipf', 'uniform', 'latest'];

export interface WorkloadPreset {
  /** Fraction of operations that are gets. */
  readFraction: number;
  /** Fraction that are puts of an existing key (YCSB's updates). */
  updateFraction: number;
  /** Fraction that are puts of a new key. */
  insertFraction: number;
  /** Fraction that are deletes of an existing key. */
  deleteFraction: number;
  distribution: RequestDistribution;
  description: string;
}

/**
 * The named workloads. The YCSB names keep YCSB's mixes (A 50/50 read/update, B 95/5, C read-only,
 * D 95/5 read/insert with reads of the latest keys); the others are the paper's names for the same
 * mixes.
 */
export const workloadPresets = {
  'read-only': {
    readFraction: 1,
    updateFraction: 0,
    insertFraction: 0,
    deleteFraction: 0,
    distribution: 'zipf',
    description: '100% get',
  },
  'read-mostly': {
    readFraction: 0.95,
    updateFraction: 0.05,
    insertFraction: 0,
    deleteFraction: 0,
    distribution: 'zipf',
    description: '95% get, 5% put',
  },
  'write-heavy': {
    readFraction: 0.5,
    updateFraction: 0.5,
    insertFraction: 0,
    deleteFraction: 0,
    distribution: 'zipf',
    description: '50% get, 50% put',
  },
  'ycsb-a': {
    readFraction: 0.5,
    updateFraction: 0.5,
    insertFraction: 0,
    deleteFraction: 0,
    distribution: 'zipf',
    description: 'YCSB A: 50% read, 50% update',
  },
  'ycsb-b': {
    readFraction: 0.95,
    updateFraction: 0.05,
    insertFraction: 0,
    deleteFraction: 0,
    distribution: 'zipf',
    description: 'YCSB B: 95% read, 5% update',
  },
  'ycsb-c': {
    readFraction: 1,
    updateFraction: 0,
    insertFraction: 0,
    deleteFraction: 0,
    distribution: 'zipf',
    description: 'YCSB C: 100% read',
  },
  'ycsb-d': {
    readFraction: 0.95,
    updateFraction: 0,
    insertFraction: 0.05,
    deleteFraction: 0,
    distribution: 'latest',
    description: 'YCSB D: 95% read, 5% insert, reads favour the latest keys',
  },
} as const satisfies Record<string, WorkloadPreset>;

export type WorkloadName = keyof typeof workloadPresets;

export const workloadNames = Object.keys(workloadPresets) as WorkloadName[];

export function isWorkloadName(name: string): name is WorkloadName {
  return Object.hasOwn(workloadPresets, name);
}

export interface WorkloadSpec {
  /** A label for reports, usually the preset name. */
  name: string;
  /** Fraction of gets. The four fractions must sum to 1. */
  readFraction: number;
  /** Fraction of puts of existing keys; when absent, whatever the other three leave. */
  updateFraction?: number;
  /** Fraction of puts of new keys: keys, keys+1, ... in order; default 0. */
  insertFraction?: number;
  /**
   * Fraction of deletes of existing keys; default 0. A deleted key still counts as existing: it may be
   * drawn again, read (and found missing) or deleted again, as in YCSB.
   */
  deleteFraction?: number;
  /** Size of the key space: keys 0 .. keys-1, all loaded before the run. */
  keys: number;
  /** Where keys come from; default 'zipf'. */
  distribution?: RequestDistribution;
  /** Zipf exponent of `zipf` and `latest`; 0 is uniform. `uniform` ignores it. */
  zipfExponent: number;
  valueBytes: number;
  seed: number;
  /**
   * Spread hot keys over the key space (see ZipfOptions.scramble). `latest` ignores it: its order is
   * recency, which a permutation would destroy.
   */
  scramble: boolean;
  keyPrefix: string;
}

/** A spec with every default filled in, as a Workload holds it. */
export type ResolvedWorkloadSpec = Required<WorkloadSpec>;

type MixField = 'readFraction' | 'updateFraction' | 'insertFraction' | 'deleteFraction';

/** Everything but the name and the mix, which come from the preset. */
export type WorkloadOverrides = Partial<Omit<WorkloadSpec, 'name' | MixField>>;

/**
 * A full spec from a preset name and overrides; defaults: 100000 keys, the preset's distribution, Zipf
 * 0.99, 1000-byte values, seed 1.
 */
export function workloadSpec(
  name: WorkloadName,
  overrides: WorkloadOverrides = {},
): ResolvedWorkloadSpec {
  const preset: WorkloadPreset = workloadPresets[name];
  return {
    name,
    readFraction: preset.readFraction,
    updateFraction: preset.updateFraction,
    insertFraction: preset.insertFraction,
    deleteFraction: preset.deleteFraction,
    keys: overrides.keys ?? 100_000,
    distribution: overrides.distribution ?? preset.distribution,
    zipfExponent: overrides.zipfExponent ?? 0.99,
    valueBytes: overrides.valueBytes ?? 1000,
    seed: overrides.seed ?? 1,
    scramble: overrides.scramble ?? false,
    keyPrefix: overrides.keyPrefix ?? defaultKeyPrefix,
  };
}

/** How far the four fractions may sum from 1, for fractions written as decimals. */
const mixTolerance = 1e-9;

/**
 * The spec with its defaults filled in, or a DinomoError('INVALID_OPTION') naming what is wrong: a
 * fraction outside [0, 1], fractions that do not sum to 1, or an unknown distribution. It reads the
 * spec and returns a new object; nothing else is touched.
 */
export function resolveWorkloadSpec(spec: WorkloadSpec): ResolvedWorkloadSpec {
  const { readFraction, insertFraction = 0, deleteFraction = 0 } = spec;
  checkFraction('readFraction', readFraction);
  checkFraction('insertFraction', insertFraction);
  checkFraction('deleteFraction', deleteFraction);
  // The remainder may come out a rounding error below 0 (1 - 0.95 - 0.05); a real excess over 1
  // fails the sum test below, with all four fractions in the message.
  const updateFraction =
    spec.updateFraction ?? Math.max(0, 1 - readFraction - insertFraction - deleteFraction);
  checkFraction('updateFraction', updateFraction);
  const sum = readFraction + updateFraction + insertFraction + deleteFraction;
  if (!(Math.abs(sum - 1) <= mixTolerance)) {
    throw new DinomoError(
      'INVALID_OPTION',
      `readFraction + updateFraction + insertFraction + deleteFraction must be 1, got ${sum} ` +
        `(${readFraction} + ${updateFraction} + ${insertFraction} + ${deleteFraction})`,
    );
  }
  const distribution = spec.distribution ?? 'zipf';
  if (!requestDistributions.includes(distribution)) {
    throw new DinomoError(
      'INVALID_OPTION',
      `distribution must be one of ${requestDistributions.join(', ')}, got ${String(distribution)}`,
    );
  }
  return { ...spec, updateFraction, insertFraction, deleteFraction, distribution };
}

function checkFraction(field: MixField, fraction: number): void {
  // Written as a negated range test so that NaN fails it too.
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new DinomoError('INVALID_OPTION', `${field} must be in [0, 1], got ${fraction}`);
  }
}

export type OpKind = 'get' | 'put' | 'insert' | 'delete';

/**
 * One operation to issue. `version` numbers the writes, puts and inserts together (the load writes
 * version 0); it is 0 for gets and deletes.
 */
export interface BenchOp {
  kind: OpKind;
  keyIndex: number;
  key: string;
  version: number;
}

/** What a run draws its operations from. */
export interface OpSource {
  /** The next operation; the object may be reused by the next call. */
  nextOp(): Readonly<BenchOp>;
  /** The value a put or insert op writes. */
  valueFor(op: Readonly<BenchOp>): Uint8Array;
}

/** The kinds in the order of the cumulative thresholds a mix draw is compared with. */
const mixOrder: readonly OpKind[] = ['get', 'put', 'insert', 'delete'];

/**
 * A stream of operations: keys from the request distribution, and an independent seeded draw per
 * operation for its kind, so the mix is exact in expectation for any fractions. (The original expanded
 * the read fraction into a cyclic list of 100 slots, which turned 0.95 into 95 gets and 6 puts.) The
 * key stream and the mix stream use separate generators, so changing the read/update split does not
 * change the keys. An insert takes no key draw: its key is the next new one, and from then on it
 * counts in `keyCount`, which is what `latest` draws over. A key counts from when its insert is handed
 * out, not acknowledged, so a read of a key whose insert is still in flight may find nothing.
 */
export class Workload implements OpSource {
  readonly spec: Readonly<ResolvedWorkloadSpec>;
  private readonly keyChooser: ZipfGenerator | LatestGenerator;
  private readonly mixRandom: SeededRandom;
  /** Cumulative fractions in `mixOrder`; the last kind with a share is Infinity, for rounding. */
  private readonly mixBelow: Float64Array;
  /** The kind of every operation when one kind has the whole mix: no draw is needed. */
  private readonly onlyKind: OpKind | null;
  private readonly values: ValueFactory;
  private readonly op: BenchOp = { kind: 'get', keyIndex: 0, key: '', version: 0 };
  private writes = 0;
  private existingKeys: number;

  /** Throws DinomoError('INVALID_OPTION') for a bad mix, distribution, key count or exponent. */
  constructor(spec: WorkloadSpec) {
    const resolved = resolveWorkloadSpec(spec);
    this.values = new ValueFactory(resolved.valueBytes);
    this.keyChooser = makeKeyChooser(resolved);
    this.spec = Object.freeze(resolved);
    this.existingKeys = resolved.keys;
    this.mixBelow = mixThresholds(resolved);
    this.onlyKind = mixOrder.find((kind) => fractionOf(resolved, kind) === 1) ?? null;
    this.mixRandom = new SeededRandom((resolved.seed ^ 0x6a09e667) >>> 0);
  }

  /** Keys that exist now: the loaded ones and every insert handed out (deletes do not count). */
  get keyCount(): number {
    return this.existingKeys;
  }

  /**
   * The next operation. The returned object is reused by the next call, so read it before calling
   * again; this keeps the hot loop free of one allocation per operation.
   */
  nextOp(): Readonly<BenchOp> {
    const op = this.op;
    const kind = this.nextKind();
    op.kind = kind;
    op.keyIndex = kind === 'insert' ? this.existingKeys++ : this.nextKeyIndex();
    op.key = keyName(op.keyIndex, this.spec.keyPrefix);
    op.version = kind === 'put' || kind === 'insert' ? ++this.writes : 0;
    return op;
  }

  private nextKind(): OpKind {
    // A mix of one kind takes no draw, as the read-only mixes never did.
    if (this.onlyKind !== null) return this.onlyKind;
    const u = this.mixRandom.next();
    for (let i = 0; i < mixOrder.length; i++) {
      if (u < (this.mixBelow[i] as number)) return mixOrder[i] as OpKind;
    }
    return 'get'; // Unreachable: the last kind with a share has an infinite threshold.
  }

  private nextKeyIndex(): number {
    const chooser = this.keyChooser;
    return chooser instanceof LatestGenerator ? chooser.next(this.existingKeys) : chooser.next();
  }

  /** The value a put or insert op writes. */
  valueFor(op: Readonly<BenchOp>): Uint8Array {
    return this.values.make(op.keyIndex, op.version);
  }

  /** The name of key index `index`. */
  key(index: number): string {
    return keyName(index, this.spec.keyPrefix);
  }

  /** The value the load phase writes for key index `index` (version 0). */
  loadValue(index: number): Uint8Array {
    return this.values.make(index, 0);
  }
}

function makeKeyChooser(spec: ResolvedWorkloadSpec): ZipfGenerator | LatestGenerator {
  const random = new SeededRandom(spec.seed);
  if (spec.distribution === 'latest') {
    return new LatestGenerator({ keys: spec.keys, exponent: spec.zipfExponent, random });
  }
  return new ZipfGenerator({
    keys: spec.keys,
    exponent: spec.distribution === 'uniform' ? 0 : spec.zipfExponent,
    random,
    scramble: spec.scramble,
  });
}

function fractionOf(spec: ResolvedWorkloadSpec, kind: OpKind): number {
  switch (kind) {
    case 'get':
      return spec.readFraction;
    case 'put':
      return spec.updateFraction;
    case 'insert':
      return spec.insertFraction;
    case 'delete':
      return spec.deleteFraction;
  }
}

/**
 * Cumulative fractions in `mixOrder`. With only gets and puts this is [read, Infinity, ...], so a draw
 * below the read fraction is a get and any other a put, exactly the draw of the get/put-only workload.
 */
function mixThresholds(spec: ResolvedWorkloadSpec): Float64Array {
  const below = new Float64Array(mixOrder.length);
  let running = 0;
  let last = 0;
  mixOrder.forEach((kind, i) => {
    running += fractionOf(spec, kind);
    below[i] = running;
    if (fractionOf(spec, kind) > 0) last = i;
  });
  below.fill(Infinity, last);
  return below;
}
