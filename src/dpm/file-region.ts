import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { DinomoError, isDinomoError } from '../errors/index.js';
import { pmemAddon } from '../util/native-addon.js';
import {
  recoverRegion,
  repairBlockStates,
  type BlockRepairReport,
  type RecoveryReport,
} from './recovery.js';
import { fenceWordOffset, formatRegion, openRegion, type FormatOptions } from './region.js';
import { currentIncarnation } from '../fabric/fence.js';

/** A DPM region mapped from a file in a data directory (native addon, pmem part). */
export interface FileRegion {
  region: SharedArrayBuffer;
  path: string;
  /** True when the file held a region from an earlier run (it was recovered), false when formatted now. */
  reopened: boolean;
  recovery: RecoveryReport | null;
  /** What recovery set right in the block headers (recovery.ts, repairBlockStates), when reopened. */
  repair: BlockRepairReport | null;
  /** Gives the data directory up (removes its lock); the mapping ends when the last thread drops it. */
  release(): void;
}

const regionFile = 'region.dpm';
const lockFile = 'LOCK';

/**
 * Opens the region in `dataDir`, or formats a new one there. A region from an earlier run is
 * recovered (torn tails cut by checksum, commit offsets checked, chains sealed, block states and
 * live counts recomputed from the chains and the index; the DPM manager then merges what is
 * unmerged). Its fence words are reset, since no writer of that run is alive in this process,
 * unless `keepFences` is set: a DPM server's KN processes outlive it, and a fenced one must stay
 * fenced (only a busy bit left by a write cut short is cleared then). The directory is locked for
 * this process: a second cluster on it would corrupt the region.
 */
export function openFileRegion(
  dataDir: string,
  regionBytes: number,
  format: FormatOptions,
  options: { keepFences?: boolean } = {},
): FileRegion {
  const pmem = pmemAddon();
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new DinomoError('INVALID_OPTION', `cannot create dataDir ${dataDir}: ${String(err)}`);
  }
  const release = lockDataDir(dataDir);
  try {
    const path = join(dataDir, regionFile);
    const existed = existsSync(path);
    let region: SharedArrayBuffer;
    try {
      region = pmem.mapFile(path, regionBytes, !existed);
    } catch (err) {
      throw new DinomoError(
        'INVALID_OPTION',
        `cannot map ${path} (${err instanceof Error ? err.message : String(err)}); ` +
          'a data directory keeps the regionBytes it was created with, or start with an empty one',
      );
    }
    // A zero first word: the file was created but never formatted.
    if (!existed || new DataView(region).getUint32(0, true) === 0 || isUnformatted(region)) {
      formatRegion(region, format);
      pmem.flush(region, 0, regionBytes);
      return { region, path, reopened: false, recovery: null, repair: null, release };
    }
    const opened = openRegion(region);
    if (opened.geometry.blockBytes !== format.blockBytes) {
      throw new DinomoError(
        'INVALID_OPTION',
        `the region in ${dataDir} has ${opened.geometry.blockBytes}-byte blocks; start with that blockBytes`,
      );
    }
    if (opened.geometry.chainCount < format.chainCount) {
      throw new DinomoError(
        'INVALID_OPTION',
        `the region in ${dataDir} has ${opened.geometry.chainCount} log chains, fewer than ` +
          `maxKns * threadsPerKn = ${format.chainCount}; lower maxKns`,
      );
    }
    const recovery = recoverRegion(opened);
    const repair = repairBlockStates(opened);
    for (let rank = 0; rank < opened.geometry.chainCount; rank++) {
      const index = fenceWordOffset(opened, rank) / 4;
      const kept = options.keepFences === true ? currentIncarnation(opened.i32, index) : 0;
      Atomics.store(opened.i32, index, kept);
    }
    return { region, path, reopened: true, recovery, repair, release };
  } catch (err) {
    release();
    throw err;
  }
}

/** A region whose formatting never finished (the process died in formatRegion): nothing in it. */
function isUnformatted(region: SharedArrayBuffer): boolean {
  try {
    openRegion(region);
    return false;
  } catch (err) {
    return isDinomoError(err) && err.message.includes('not fully formatted');
  }
}

/**
 * Takes `dataDir/LOCK` (created exclusively, holding the pid). A lock left by a process that is gone
 * (killed) is taken over; one held by a live process is an error.
 */
function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, lockFile);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to give up.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new DinomoError('INVALID_OPTION', `cannot lock dataDir ${dataDir}: ${String(err)}`);
      }
      const holder = Number(readFileSync(path, 'utf8'));
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) {
        throw new DinomoError(
          'INVALID_OPTION',
          `dataDir ${dataDir} is in use by process ${holder}; stop that cluster or use another dataDir`,
        );
      }
      unlinkSync(path);
    }
  }
  throw new DinomoError('INVALID_OPTION', `cannot lock dataDir ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
