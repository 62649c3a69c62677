import { existsSync, readdirSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { runCrashScenario, type CrashRunReport } from '../bench/crash-run.js';
import { systemClock } from '../time/index.js';
import { FlagError, parseInteger, parseProvider } from './flags.js';
import { exitCodes, type CliIo } from './program.js';

interface CrashRunFlags {
  dataDir?: string;
  kns?: string;
  threads?: string;
  writes?: string;
  concurrency?: string;
  provider?: string;
  json?: boolean;
}

/** `dinomo crash-run`: the multi-process durability run (src/bench/crash-run.ts). */
export function addCrashRunCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('crash-run')
    .description(
      'start a multi-process cluster (cluster up), write distinct keys from this process, kill -9 ' +
        'the DPM a third of the way in and a KN two thirds in, then read every acknowledged write ' +
        'back, also after cluster down and up; exit code 1 if any is lost',
    )
    .option('--data-dir <path>', 'an empty or missing directory for the cluster (required)')
    .option('--kns <n>', 'KN processes (default 2)')
    .option('--threads <n>', 'KN threads per KN (default 2)')
    .option('--writes <n>', 'acknowledged writes to reach (default 12000)')
    .option('--concurrency <n>', 'writes in flight (default 32)')
    .option('--provider <name>', 'libfabric provider: shm or tcp (default shm)')
    .option('--json', 'print the report as one JSON object')
    .action(async (flags: CrashRunFlags) => setExitCode(await crashRunCommand(flags, io)));
}

async function crashRunCommand(flags: CrashRunFlags, io: CliIo): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo crash-run: ${message}\n`);
  let report: CrashRunReport;
  try {
    const dataDir = emptyDataDir(flags.dataDir);
    const provider = parseProvider(flags.provider);
    const options = {
      dataDir,
      cli: fileURLToPath(new URL('./main.js', import.meta.url)),
      kns: parseInteger('--kns', flags.kns, 2, 16, 2),
      threadsPerKn: parseInteger('--threads', flags.threads, 1, 16, 2),
      writes: parseInteger('--writes', flags.writes, 300, 10_000_000, 12_000),
      concurrency: parseInteger('--concurrency', flags.concurrency, 1, 4096, 32),
      provider,
      clock: systemClock,
      log: (line: string) => void io.stderr.write(`dinomo crash-run: ${line}\n`),
    } as const;
    report = await runCrashScenario(options);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    return err instanceof FlagError ? exitCodes.usage : exitCodes.failed;
  }
  io.stdout.write(flags.json === true ? `${JSON.stringify(report)}\n` : formatReport(report));
  return report.lost === 0 && report.lostAfterRestart === 0 ? exitCodes.ok : exitCodes.failed;
}

function emptyDataDir(dataDir: string | undefined): string {
  if (dataDir === undefined || dataDir.trim() === '') {
    throw new FlagError('--data-dir', 'is required: an empty or missing directory');
  }
  const path = isAbsolute(dataDir) ? dataDir : resolve(dataDir);
  if (existsSync(path) && readdirSync(path).length > 0) {
    throw new FlagError('--data-dir', `must be empty or missing (${path} is not)`);
  }
  return path;
}

function formatReport(r: CrashRunReport): string {
  const kills = r.kills
    .map(
      (k) =>
        `  kill -9 ${k.process} at ${k.atAcked} acked: writes acknowledged again after ${k.recoveryMs.toFixed(0)} ms`,
    )
    .join('\n');
  return (
    `${r.kns} KNs × ${r.threadsPerKn} threads, provider ${r.provider}\n` +
    `acknowledged writes: ${r.acked} in ${r.writeSeconds.toFixed(1)} s (${r.ackedPerSecond.toFixed(0)}/s)\n` +
    `not acknowledged (indeterminate): ${r.unacked} ${JSON.stringify(r.unackedByCode)}\n` +
    `${kills}\n` +
    `lost: ${r.lost}; lost after cluster down + up: ${r.lostAfterRestart}\n`
  );
}
