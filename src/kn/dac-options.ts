import { DinomoError } from '../errors/index.js';
import { dacEntryOverheadBytes } from './dac-layout.js';

export interface DacOptions {
  /** The exact byte budget: every cached entry is charged its real size (see dac-layout.ts). */
  capacityBytes: number;
  /** The starting value of missCost, in round trips per miss. Default 2 (our miss target). */
  missCostInitial?: number;
  /** The EWMA weight of a new missCost sample, in (0, 1]. Default 0.1. */
  missCostSmoothing?: number;
  /** All LFU frequencies are halved after this many accesses (lookups and inserts). */
  decayEveryAccesses?: number;
  /** The most entries (nodes) the cache may hold; sizes the hash table. Default: as many as could fit. */
  entriesMax?: number;
  /**
   * Cache shortcuts only, never values: clover mode, whose KN threads share every key and so must
   * read each value from the DPM to see other threads' writes (docs/baselines.md). Default false.
   */
  shortcutsOnly?: boolean;
}

export interface ResolvedDacOptions {
  capacityBytes: number;
  missCostInitial: number;
  missCostSmoothing: number;
  decayEveryAccesses: number;
  entriesMax: number;
  shortcutsOnly: boolean;
}

/** The smallest budget: room for a few shortcuts, so that tiny caches in tests still behave. */
export const dacCapacityBytesMin = 0;
/** The largest budget: the heap (2 x capacity) must stay below 2^31 bytes (dac-allocator.ts). */
export const dacCapacityBytesMax = 1023 * 1024 * 1024;
/** The node limit: the hash table has 2 slots of 8 bytes per node, so this bounds it to 256 MiB. */
export const dacEntriesMaxLimit = 1 << 24;
/** The decay period never drops below this many accesses by default, so small caches still learn. */
export const dacDecayEveryAccessesMin = 1024;

function invalid(name: string, rule: string, value: unknown): DinomoError {
  return new DinomoError('INVALID_OPTION', `dac.${name} must be ${rule}, got ${String(value)}`);
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(name, `an integer in [${min}, ${max}]`, value);
  }
  return value;
}

/**
 * Checks the options and fills in defaults. The default node limit is the number of entries that
 * could fit if every key were empty, so with the default the byte budget is always the binding
 * limit and the node limit never changes which entry leaves.
 */
export function resolveDacOptions(options: DacOptions): ResolvedDacOptions {
  const capacityBytes = integerIn(
    'capacityBytes',
    options.capacityBytes,
    dacCapacityBytesMin,
    dacCapacityBytesMax,
  );
  // A zero budget is a valid "no cache" setting: every insert is refused, every lookup misses.
  const entriesDefault = Math.max(
    1,
    Math.min(dacEntriesMaxLimit, Math.floor(capacityBytes / dacEntryOverheadBytes)),
  );
  const entriesMax = integerIn(
    'entriesMax',
    options.entriesMax ?? entriesDefault,
    1,
    dacEntriesMaxLimit,
  );
  const missCostInitial = options.missCostInitial ?? 2;
  if (!Number.isFinite(missCostInitial) || missCostInitial < 0) {
    throw invalid('missCostInitial', 'a finite number >= 0', missCostInitial);
  }
  const missCostSmoothing = options.missCostSmoothing ?? 0.1;
  if (!Number.isFinite(missCostSmoothing) || missCostSmoothing <= 0 || missCostSmoothing > 1) {
    throw invalid('missCostSmoothing', 'a number in (0, 1]', missCostSmoothing);
  }
  const decayDefault = Math.max(dacDecayEveryAccessesMin, 4 * entriesMax);
  const decayEveryAccesses = integerIn(
    'decayEveryAccesses',
    options.decayEveryAccesses ?? decayDefault,
    1,
    Number.MAX_SAFE_INTEGER,
  );
  const shortcutsOnly = options.shortcutsOnly ?? false;
  return {
    capacityBytes,
    missCostInitial,
    missCostSmoothing,
    decayEveryAccesses,
    entriesMax,
    shortcutsOnly,
  };
}
