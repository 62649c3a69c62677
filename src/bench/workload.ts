import { DinomoError } from '../errors/index.js';
import { SeededRandom } from '../util/index.js';
import { ValueFactory } from './values.js';
import { ZipfGenerator, defaultKeyPrefix, keyName } from './zipf.js';

export interface WorkloadPreset {
  /** Fraction of operations that are gets; the rest are puts. */
  readFraction: number;
  description: string;
}

/**
 * The named workloads. The YCSB names keep YCSB's read/update mixes (A 50/50, B 95/5, C read-only);
 * the others are the paper's names for the same mixes.
 */
export const workloadPresets = {
  'read-only': { readFraction: 1, description: '100% get' },
  'read-mostly': { readFraction: 0.95, description: '95% get, 5% put' },
  'write-heavy': { readFraction: 0.5, description: '50% get, 50% put' },
  'ycsb-a': { readFraction: 0.5, description: 'YCSB A: 50% read, 50% update' },
  'ycsb-b': { readFraction: 0.95, description: 'YCSB B: 95% read, 5% update' },
  'ycsb-c': { readFraction: 1, description: 'YCSB C: 100% read' },
} as const satisfies Record<string, WorkloadPreset>;

export type WorkloadName = keyof typeof workloadPresets;

export const workloadNames = Object.keys(workloadPresets) as WorkloadName[];

export function isWorkloadName(name: string): name is WorkloadName {
  return Object.hasOwn(workloadPresets, name);
}

export interface WorkloadSpec {
  /** A label for reports, usually the preset name. */
  name: string;
  readFraction: number;
  /** Size of the key space: keys 0 .. keys-1, all loaded before the run. */
  keys: number;
  /** Zipf exponent; 0 is uniform. */
  zipfExponent: number;
  valueBytes: number;
  seed: number;
  /** Spread hot keys over the key space (see ZipfOptions.scramble). */
  scramble: boolean;
  keyPrefix: string;
}

export type WorkloadOverrides = Partial<Omit<WorkloadSpec, 'name' | 'readFraction'>>;

/** A full spec from a preset name and overrides; defaults: 100000 keys, Zipf 0.99, 1000-byte values, seed 1. */
export function workloadSpec(name: WorkloadName, overrides: WorkloadOverrides = {}): WorkloadSpec {
  return {
    name,
    readFraction: workloadPresets[name].readFraction,
    keys: overrides.keys ?? 100_000,
    zipfExponent: overrides.zipfExponent ?? 0.99,
    valueBytes: overrides.valueBytes ?? 1000,
    seed: overrides.seed ?? 1,
    scramble: overrides.scramble ?? false,
    keyPrefix: overrides.keyPrefix ?? defaultKeyPrefix,
  };
}

export type OpKind = 'get' | 'put';

/** One operation to issue. `version` numbers the puts (the load writes version 0); it is 0 for gets. */
export interface BenchOp {
  kind: OpKind;
  keyIndex: number;
  key: string;
  version: number;
}

/** What a closed-loop run draws its operations from. */
export interface OpSource {
  /** The next operation; the object may be reused by the next call. */
  nextOp(): Readonly<BenchOp>;
  /** The value a put op writes. */
  valueFor(op: Readonly<BenchOp>): Uint8Array;
}

/**
 * A stream of operations: keys from the Zipf generator, and an independent seeded draw per operation
 * for get or put, so the mix is exact in expectation for any fraction. (The original expanded the
 * fraction into a cyclic list of 100 slots, which turned 0.95 into 95 gets and 6 puts.) The key stream
 * and the mix stream use separate generators, so changing the mix does not change the keys.
 */
export class Workload implements OpSource {
  readonly spec: Readonly<WorkloadSpec>;
  private readonly zipf: ZipfGenerator;
  private readonly mixRandom: SeededRandom;
  private readonly values: ValueFactory;
  private readonly op: BenchOp = { kind: 'get', keyIndex: 0, key: '', version: 0 };
  private writes = 0;

  constructor(spec: WorkloadSpec) {
    if (!(spec.readFraction >= 0 && spec.readFraction <= 1)) {
      throw new DinomoError(
        'INVALID_OPTION',
        `readFraction must be in [0, 1], got ${spec.readFraction}`,
      );
    }
    this.spec = Object.freeze({ ...spec });
    this.values = new ValueFactory(spec.valueBytes);
    this.zipf = new ZipfGenerator({
      keys: spec.keys,
      exponent: spec.zipfExponent,
      random: new SeededRandom(spec.seed),
      scramble: spec.scramble,
    });
    this.mixRandom = new SeededRandom((spec.seed ^ 0x6a09e667) >>> 0);
  }

  /**
   * The next operation. The returned object is reused by the next call, so read it before calling
   * again; this keeps the hot loop free of one allocation per operation.
   */
  nextOp(): Readonly<BenchOp> {
    const op = this.op;
    const isGet = this.spec.readFraction === 1 || this.mixRandom.next() < this.spec.readFraction;
    op.kind = isGet ? 'get' : 'put';
    op.keyIndex = this.zipf.next();
    op.key = keyName(op.keyIndex, this.spec.keyPrefix);
    op.version = isGet ? 0 : ++this.writes;
    return op;
  }

  /** The value a put op writes. */
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
