import { regionBytesMax } from '../config/limits.js';
import {
  demoDefaults,
  isWorkloadName,
  maxZipfKeys,
  workloadNames,
  type BenchClusterOptions,
  type DemoOptions,
} from '../bench/index.js';
import { valueBytesMax } from '../config/index.js';
import { entropySeed } from '../util/index.js';

/** A bad command-line flag. The CLI prints the message and exits with code 2 (usage error). */
export class FlagError extends Error {
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
  if (options.kns * options.threadsPerKn > 1024) {
    throw new FlagError(
      '--threads',
      `times --kns must be at most 1024 KN threads (got ${options.kns * options.threadsPerKn})`,
    );
  }
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
  if (kns * threadsPerKn > 1024) {
    throw new FlagError(
      '--threads',
      `times --kns must be at most 1024 KN threads (got ${kns * threadsPerKn})`,
    );
  }
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
