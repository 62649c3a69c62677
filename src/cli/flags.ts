import { regionBytesMax } from '../config/limits.js';
import {
  benchDefaults,
  benchModes,
  demoDefaults,
  isWorkloadName,
  keyOrders,
  maxZipfKeys,
  requestDistributions,
  workloadNames,
  type BenchClusterOptions,
  type BenchMode,
  type BenchRunOptions,
  type DemoOptions,
  type KeyOrder,
  type RequestDistribution,
} from '../bench/index.js';
import { valueBytesMax } from '../config/index.js';
import { entropySeed } from '../util/index.js';

/** A bad command-line flag. The CLI prints the message and exits with code 2 (usage error). */
export class FlagError extends Error {
  /** The stable error code of a bad option (src/errors/codes.ts), for messages and scripts. */
  readonly code = 'INVALID_OPTION';
  readonly flag: string;

  constructor(flag: string, message: string) {
    super(`${flag} ${message}`);
    this.name = 'FlagError';
    this.flag = flag;
  }
}

/** The raw flag values of `dinomo demo`, as commander hands them over (strings; booleans for switches). */
export interface DemoFlagValues {
  kns?: string;
  threads?: string;
  keys?: string;
  duration?: string;
  workload?: string;
  zipf?: string;
  scramble?: boolean;
  valueBytes?: string;
  concurrency?: string;
  cacheBytes?: string;
  regionBytes?: string;
  seed?: string;
  json?: boolean;
  elastic?: boolean;
}

export interface ParsedDemoFlags {
  options: DemoOptions;
  json: boolean;
  /** False when the seed was drawn from entropy; the report still records it for replay. */
  seedGiven: boolean;
}

const GiB = 1024 ** 3;

/**
 * Validates every flag and fills the defaults. The ranges mirror the cluster's own option checks
 * (src/config/options.ts), so that a bad value is reported under the flag's name before anything
 * starts; the cluster still checks them again.
 */
export function parseDemoFlags(
  raw: DemoFlagValues,
  drawSeed: () => number = entropySeed,
): ParsedDemoFlags {
  const workload = raw.workload ?? demoDefaults.workload;
  if (!isWorkloadName(workload)) {
    throw new FlagError(
      '--workload',
      `must be one of ${workloadNames.join(', ')} (got "${workload}")`,
    );
  }
  const seed =
    raw.seed === undefined ? drawSeed() : parseInteger('--seed', raw.seed, 0, 2 ** 32 - 1);
  const options: DemoOptions = {
    kns: parseInteger('--kns', raw.kns, 1, 64, demoDefaults.kns),
    threadsPerKn: parseInteger('--threads', raw.threads, 1, 64, demoDefaults.threadsPerKn),
    keys: parseInteger('--keys', raw.keys, 1, maxZipfKeys, demoDefaults.keys),
    durationSec: parseNumber('--duration', raw.duration, 0.001, 86_400, demoDefaults.durationSec),
    workload,
    zipf: parseNumber('--zipf', raw.zipf, 0, 10, demoDefaults.zipf),
    scramble: raw.scramble ?? demoDefaults.scramble,
    valueBytes:
      parseBytes('--value-bytes', raw.valueBytes, 0, valueBytesMax) ?? demoDefaults.valueBytes,
    concurrency: parseInteger(
      '--concurrency',
      raw.concurrency,
      1,
      100_000,
      demoDefaults.concurrency,
    ),
    cacheBytesPerThread: parseBytes('--cache-bytes', raw.cacheBytes, 0, 16 * GiB),
    regionBytes: parseBytes('--region-bytes', raw.regionBytes, 16 * 1024 ** 2, regionBytesMax),
    seed,
    elastic: raw.elastic ?? false,
  };
  checkKnThreads(options.kns, options.threadsPerKn);
  return { options, json: raw.json ?? false, seedGiven: raw.seed !== undefined };
}

/** The raw flag values of `dinomo trigger`. */
export interface TriggerFlagValues {
  file?: string;
  kns?: string;
  threads?: string;
  cacheBytes?: string;
  regionBytes?: string;
  seed?: string;
}

export interface ParsedTriggerFlags {
  /** The script to run; null: read commands from stdin. */
  file: string | null;
  cluster: BenchClusterOptions;
  seed: number;
  seedGiven: boolean;
}

/** Validates the flags of `dinomo trigger`, with the same ranges and defaults as `dinomo demo`. */
export function parseTriggerFlags(
  raw: TriggerFlagValues,
  drawSeed: () => number = entropySeed,
): ParsedTriggerFlags {
  const kns = parseInteger('--kns', raw.kns, 1, 64, demoDefaults.kns);
  const threadsPerKn = parseInteger('--threads', raw.threads, 1, 64, demoDefaults.threadsPerKn);
  checkKnThreads(kns, threadsPerKn);
  const cluster: BenchClusterOptions = { kns, threadsPerKn };
  const cacheBytes = parseBytes('--cache-bytes', raw.cacheBytes, 0, 16 * GiB);
  if (cacheBytes !== null) cluster.cacheBytesPerThread = cacheBytes;
  const regionBytes = parseBytes('--region-bytes', raw.regionBytes, 16 * 1024 ** 2, regionBytesMax);
  if (regionBytes !== null) cluster.regionBytes = regionBytes;
  if (raw.file?.trim() === '') throw new FlagError('--file', 'needs a path');
  const seed =
    raw.seed === undefined ? drawSeed() : parseInteger('--seed', raw.seed, 0, 2 ** 32 - 1);
  return { file: raw.file ?? null, cluster, seed, seedGiven: raw.seed !== undefined };
}

/** The raw flag values of `dinomo bench`. `progress` is false with `--no-progress`. */
export interface BenchFlagValues {
  mode?: string;
  workload?: string;
  kns?: string;
  threads?: string;
  duration?: string;
  warmup?: string;
  repetitions?: string;
  keys?: string;
  valueBytes?: string;
  zipf?: string;
  distribution?: string;
  keyOrder?: string;
  concurrency?: string;
  rate?: string;
  maxInFlight?: string;
  cacheBytes?: string;
  regionBytes?: string;
  seed?: string;
  json?: boolean;
  timelineSvg?: string;
  progress?: boolean;
}

export interface ParsedBenchFlags {
  options: BenchRunOptions;
  json: boolean;
  /** False with --no-progress; the bar is drawn only on a terminal and without --json anyway. */
  progress: boolean;
  /** Where to write the throughput-over-time chart; null: no chart. */
  timelineSvg: string | null;
  seedGiven: boolean;
}

/**
 * Validates every flag of `dinomo bench` and fills the defaults (`benchDefaults`), with the same
 * ranges as `dinomo demo`. Nothing is touched: a bad flag throws a FlagError naming it.
 */
export function parseBenchFlags(
  raw: BenchFlagValues,
  drawSeed: () => number = entropySeed,
): ParsedBenchFlags {
  const d = benchDefaults;
  const mode = oneOf<BenchMode>('--mode', raw.mode, benchModes, d.mode);
  const workload = raw.workload ?? d.workload;
  if (!isWorkloadName(workload)) {
    throw new FlagError(
      '--workload',
      `must be one of ${workloadNames.join(', ')} (got "${workload}")`,
    );
  }
  const kns = parseInteger('--kns', raw.kns, 1, 64, d.kns);
  const threadsPerKn = parseInteger('--threads', raw.threads, 1, 64, d.threadsPerKn);
  checkKnThreads(kns, threadsPerKn);
  const distribution =
    raw.distribution === undefined
      ? null
      : oneOf<RequestDistribution>('--distribution', raw.distribution, requestDistributions);
  const rate = raw.rate === undefined ? null : parseNumber('--rate', raw.rate, 1, 10_000_000, 0);
  if (rate === null && raw.maxInFlight !== undefined) {
    throw new FlagError(
      '--max-in-flight',
      'applies to the open loop only: give --rate too, or use --concurrency for the closed loop',
    );
  }
  if (raw.timelineSvg?.trim() === '') throw new FlagError('--timeline-svg', 'needs a file path');
  const options: BenchRunOptions = {
    mode,
    kns,
    threadsPerKn,
    workload,
    keys: parseInteger('--keys', raw.keys, 1, maxZipfKeys, d.keys),
    valueBytes: parseBytes('--value-bytes', raw.valueBytes, 0, valueBytesMax) ?? d.valueBytes,
    zipf: parseNumber('--zipf', raw.zipf, 0, 10, d.zipf),
    distribution,
    keyOrder: oneOf<KeyOrder>('--key-order', raw.keyOrder, keyOrders, d.keyOrder),
    durationSec: parseNumber('--duration', raw.duration, 0.001, 86_400, d.durationSec),
    warmupSec: parseNumber('--warmup', raw.warmup, 0, 3600, d.warmupSec),
    repetitions: parseInteger('--repetitions', raw.repetitions, 1, 1000, d.repetitions),
    concurrency: parseInteger('--concurrency', raw.concurrency, 1, 100_000, d.concurrency),
    ratePerSec: rate,
    maxInFlight: parseInteger('--max-in-flight', raw.maxInFlight, 1, 1_000_000, d.maxInFlight),
    cacheBytesPerThread: parseBytes('--cache-bytes', raw.cacheBytes, 0, 16 * GiB),
    regionBytes: parseBytes('--region-bytes', raw.regionBytes, 16 * 1024 ** 2, regionBytesMax),
    seed: raw.seed === undefined ? drawSeed() : parseInteger('--seed', raw.seed, 0, 2 ** 32 - 1),
  };
  return {
    options,
    json: raw.json ?? false,
    progress: raw.progress ?? true,
    timelineSvg: raw.timelineSvg ?? null,
    seedGiven: raw.seed !== undefined,
  };
}

function checkKnThreads(kns: number, threadsPerKn: number): void {
  if (kns * threadsPerKn > 1024) {
    throw new FlagError(
      '--threads',
      `times --kns must be at most 1024 KN threads (got ${kns * threadsPerKn})`,
    );
  }
}

/** One of `choices`, or `fallback` when the flag is absent (a flag without a fallback needs a value). */
function oneOf<T extends string>(
  flag: string,
  text: string | undefined,
  choices: readonly T[],
  fallback?: T,
): T {
  const value = text ?? fallback;
  if (value === undefined) throw new FlagError(flag, `needs one of ${choices.join(', ')}`);
  if (!(choices as readonly string[]).includes(value)) {
    throw new FlagError(flag, `must be one of ${choices.join(', ')} (got "${value}")`);
  }
  return value as T;
}

const decimalPattern = /^\d+(?:\.\d+)?(?:e\+?\d+)?$/i;

/** A plain decimal number; `_` may group digits (100_000) and an exponent is allowed (1e6). */
function toNumber(flag: string, text: string): number {
  const cleaned = text.trim().replace(/(\d)_(?=\d)/g, '$1');
  if (!decimalPattern.test(cleaned)) throw new FlagError(flag, `must be a number (got "${text}")`);
  return Number(cleaned);
}

export function parseNumber(
  flag: string,
  text: string | undefined,
  min: number,
  max: number,
  fallback: number,
): number {
  if (text === undefined) return fallback;
  const value = toNumber(flag, text);
  if (value < min || value > max)
    throw new FlagError(flag, `must be from ${min} to ${max} (got "${text}")`);
  return value;
}

export function parseInteger(
  flag: string,
  text: string | undefined,
  min: number,
  max: number,
  fallback?: number,
): number {
  if (text === undefined) {
    if (fallback === undefined) throw new FlagError(flag, 'needs a value');
    return fallback;
  }
  const value = toNumber(flag, text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FlagError(flag, `must be an integer from ${min} to ${max} (got "${text}")`);
  }
  return value;
}

const byteUnits: Record<string, number> = {
  '': 1,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/**
 * A byte count: a whole number, optionally with a binary unit (`64k`, `8MiB`, `1g`). Null when the flag
 * is absent, so the cluster's default applies.
 */
export function parseBytes(
  flag: string,
  text: string | undefined,
  min: number,
  max: number,
): number | null {
  if (text === undefined) return null;
  const match = /^([\d_.e+]+)\s*([kmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (match === null)
    throw new FlagError(
      flag,
      `must be a byte count such as 1048576, 1024k or 8MiB (got "${text}")`,
    );
  const value = toNumber(flag, match[1] ?? '') * (byteUnits[(match[2] ?? '').toLowerCase()] ?? 1);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new FlagError(
      flag,
      `must be a whole number of bytes from ${min} to ${max} (got "${text}")`,
    );
  }
  return value;
}

/** `--provider`: the libfabric provider of a multi-process cluster (default shm). */
export function parseProvider(text: string | undefined): 'shm' | 'tcp' {
  const provider = text ?? 'shm';
  if (provider !== 'shm' && provider !== 'tcp') {
    throw new FlagError('--provider', `must be shm or tcp (got "${provider}")`);
  }
  return provider;
}

/** `--durability`: async or sync (default async). */
export function parseDurability(text: string | undefined): 'async' | 'sync' {
  const durability = text ?? 'async';
  if (durability !== 'async' && durability !== 'sync') {
    throw new FlagError('--durability', `must be async or sync (got "${durability}")`);
  }
  return durability;
}
