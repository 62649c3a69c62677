import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import {
  Supervisor,
  clusterStateFile,
  type ClusterState,
  type SupervisorOptions,
} from '../cluster/supervisor.js';
import { systemClock } from '../time/index.js';
import { fabricAddon, fabricAvailable } from '../util/native-addon.js';
import { FlagError, parseBytes, parseDurability, parseInteger, parseProvider } from './flags.js';
import { exitCodes, type CliIo } from './program.js';

interface UpFlags {
  dataDir?: string;
  kns?: string;
  threads?: string;
  maxKns?: string;
  regionBytes?: string;
  blockBytes?: string;
  cacheBytes?: string;
  provider?: string;
  durability?: string;
  foreground?: boolean;
}

const MiB = 1024 ** 2;
const upTimeoutMs = 90_000;
const downTimeoutMs = 90_000;
const pollMs = 100;

/** `dinomo cluster up | down | status`: a multi-process cluster on this machine. */
export function addClusterCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  const cluster = program
    .command('cluster')
    .description('run a multi-process cluster on this machine (DPM server, monitor, KN processes)');
  const up = cluster
    .command('up')
    .description(
      'start the DPM server, the monitor and --kns KN processes in the background under a ' +
        'supervisor that restarts a dead DPM and replaces a dead KN; prints one JSON line with the ' +
        'URL for connect() once every KN serves',
    );
  addUpOptions(up)
    .option('--foreground', 'run the supervisor in this process until SIGTERM or SIGINT')
    .action(async (flags: UpFlags) => setExitCode(await upCommand(flags, io)));
  addUpOptions(cluster.command('supervise', { hidden: true })).action(async (flags: UpFlags) =>
    setExitCode(await superviseCommand(flags, io)),
  );
  cluster
    .command('down')
    .description('stop the cluster in --data-dir: KNs first, then the monitor, then the DPM')
    .option('--data-dir <path>', 'the directory given to cluster up (required)')
    .action(async (flags: { dataDir?: string }) => setExitCode(await downCommand(flags, io)));
  cluster
    .command('status')
    .description('print the state of the cluster in --data-dir (cluster.json) as JSON')
    .option('--data-dir <path>', 'the directory given to cluster up (required)')
    .action((flags: { dataDir?: string }) => setExitCode(statusCommand(flags, io)));
}

function addUpOptions(command: Command): Command {
  return command
    .option('--data-dir <path>', 'region, logs and cluster.json go here (required)')
    .option('--kns <n>', 'KN processes (default 2)')
    .option('--threads <n>', 'KN threads per KN (default 2)')
    .option('--max-kns <n>', 'KNs over the run, replacements included (default kns + 4)')
    .option('--region-bytes <n>', 'DPM region size for a new region (default 256MiB)')
    .option('--block-bytes <n>', 'log block size for a new region (default 4MiB)')
    .option('--cache-bytes <n>', 'DAC bytes per KN thread (default 8MiB)')
    .option('--provider <name>', 'libfabric provider: shm or tcp (default shm)')
    .option('--durability <mode>', 'async or sync, as for dinomo dpm (default async)');
}

async function upCommand(flags: UpFlags, io: CliIo): Promise<number> {
  const fail = (message: string): number => {
    io.stderr.write(`dinomo cluster up: ${message}\n`);
    return exitCodes.failed;
  };
  let options: SupervisorOptions;
  try {
    options = parseUpFlags(flags, io);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.stderr.write(`dinomo cluster up: ${err.message}\n`);
    return exitCodes.usage;
  }
  if (!fabricAvailable()) {
    // Every process of the cluster needs it: say so once, before starting any.
    try {
      fabricAddon();
    } catch (err) {
      io.stderr.write(`dinomo cluster up: ${(err as Error).message}\n`);
    }
    return exitCodes.usage;
  }
  const running = readState(options.dataDir);
  if (running !== null && isAlive(running.supervisorPid)) {
    return fail(`a cluster already runs in ${options.dataDir} (${running.url}); stop it first`);
  }
  if (flags.foreground === true) return runSupervisor(options, io, true);
  // The supervisor runs on in the background, detached from this terminal, with its own log.
  mkdirSync(join(options.dataDir, 'logs'), { recursive: true });
  const logFd = openSync(join(options.dataDir, 'logs', 'supervisor.log'), 'a');
  const child = spawn(process.execPath, [options.cli, ...superviseArgs(flags, options.dataDir)], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  let exited: number | string | null = null;
  child.once('exit', (code, signal) => (exited = code ?? signal));
  child.unref();
  const state = await waitFor(
    () => readState(options.dataDir),
    upTimeoutMs,
    () => exited !== null,
  );
  if (state === null) {
    const log = join(options.dataDir, 'logs', 'supervisor.log');
    return fail(`the cluster did not start (see ${log}):\n${tailOf(log)}`);
  }
  io.stdout.write(`${JSON.stringify({ ready: true, ...summary(state, options.dataDir) })}\n`);
  return exitCodes.ok;
}

async function superviseCommand(flags: UpFlags, io: CliIo): Promise<number> {
  return runSupervisor(parseUpFlags(flags, io), io, false);
}

async function runSupervisor(
  options: SupervisorOptions,
  io: CliIo,
  print: boolean,
): Promise<number> {
  const supervisor = new Supervisor(options);
  let state: ClusterState;
  try {
    state = await supervisor.start();
  } catch (err) {
    io.stderr.write(`dinomo cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    return exitCodes.failed;
  }
  if (print)
    io.stdout.write(`${JSON.stringify({ ready: true, ...summary(state, options.dataDir) })}\n`);
  const onSignal = (): void => void supervisor.stop();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const code = await supervisor.done;
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  return code;
}

async function downCommand(flags: { dataDir?: string }, io: CliIo): Promise<number> {
  const dataDir = requireDataDir(flags.dataDir, 'down', io);
  if (dataDir === null) return exitCodes.usage;
  const state = readState(dataDir);
  if (state === null || !isAlive(state.supervisorPid)) {
    io.stderr.write(`dinomo cluster down: no cluster runs in ${dataDir}\n`);
    return exitCodes.ok;
  }
  process.kill(state.supervisorPid, 'SIGTERM');
  const gone = await waitFor(
    () => (isAlive(state.supervisorPid) ? null : true),
    downTimeoutMs,
    () => false,
  );
  if (gone === null) {
    // The supervisor is stuck: end every process it recorded.
    const pids = [
      state.supervisorPid,
      state.dpm.pid,
      state.monitor.pid,
      ...state.kns.map((k) => k.pid),
    ];
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    io.stderr.write(`dinomo cluster down: the cluster did not stop in time; killed it\n`);
    return exitCodes.failed;
  }
  io.stdout.write(`${JSON.stringify({ stopped: true, dataDir })}\n`);
  return exitCodes.ok;
}

function statusCommand(flags: { dataDir?: string }, io: CliIo): number {
  const dataDir = requireDataDir(flags.dataDir, 'status', io);
  if (dataDir === null) return exitCodes.usage;
  const state = readState(dataDir);
  const running = state !== null && isAlive(state.supervisorPid);
  io.stdout.write(`${JSON.stringify({ running, ...(running ? state : {}) })}\n`);
  return exitCodes.ok;
}

function parseUpFlags(flags: UpFlags, io: CliIo): SupervisorOptions {
  const dataDir = requireDataDirOrThrow(flags.dataDir);
  const provider = parseProvider(flags.provider);
  const durability = parseDurability(flags.durability);
  const kns = parseInteger('--kns', flags.kns, 1, 256, 2);
  const threadsPerKn = parseInteger('--threads', flags.threads, 1, 64, 2);
  const maxKns = parseInteger('--max-kns', flags.maxKns, kns, 1024, kns + 4);
  if (maxKns * threadsPerKn > 1024) {
    throw new FlagError('--max-kns', `× --threads must be at most 1024 KN thread ranks`);
  }
  return {
    dataDir,
    kns,
    threadsPerKn,
    maxKns,
    regionBytes: parseBytes('--region-bytes', flags.regionBytes, 16 * MiB, 2 ** 40) ?? 256 * MiB,
    blockBytes: parseBytes('--block-bytes', flags.blockBytes, 64 * 1024, 1024 * MiB) ?? 4 * MiB,
    cacheBytes: parseBytes('--cache-bytes', flags.cacheBytes, 64 * 1024, 2 ** 34),
    provider,
    durability,
    secretFile: secretFileFor(dataDir),
    cli: fileURLToPath(new URL('./main.js', import.meta.url)),
    clock: systemClock,
    log: (line) => void io.stderr.write(`dinomo cluster: ${line}\n`),
  };
}

/**
 * The processes prove to each other that they hold the cluster secret: DINOMO_SECRET when it is
 * set (every process inherits it), else a random one kept in the data directory, readable by this
 * user only.
 */
function secretFileFor(dataDir: string): string | null {
  if (process.env.DINOMO_SECRET !== undefined) return null;
  const path = join(dataDir, 'secret');
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  }
  return path;
}

function summary(state: ClusterState, dataDir: string): Record<string, unknown> {
  return { url: state.url, secretFile: state.secretFile, dataDir, kns: state.kns };
}

function requireDataDirOrThrow(dataDir: string | undefined): string {
  if (dataDir === undefined || dataDir.trim() === '') {
    throw new FlagError('--data-dir', 'is required: the directory of the cluster');
  }
  return isAbsolute(dataDir) ? dataDir : resolve(dataDir);
}

function requireDataDir(dataDir: string | undefined, command: string, io: CliIo): string | null {
  try {
    return requireDataDirOrThrow(dataDir);
  } catch (err) {
    io.stderr.write(`dinomo cluster ${command}: ${(err as Error).message}\n`);
    return null;
  }
}

/** The command line of `cluster supervise` with the flags `cluster up` was given. */
function superviseArgs(flags: UpFlags, dataDir: string): string[] {
  const args = ['cluster', 'supervise', '--data-dir', dataDir];
  const named: Array<[string, string | undefined]> = [
    ['--kns', flags.kns],
    ['--threads', flags.threads],
    ['--max-kns', flags.maxKns],
    ['--region-bytes', flags.regionBytes],
    ['--block-bytes', flags.blockBytes],
    ['--cache-bytes', flags.cacheBytes],
    ['--provider', flags.provider],
    ['--durability', flags.durability],
  ];
  for (const [flag, value] of named) if (value !== undefined) args.push(flag, value);
  return args;
}

export function readState(dataDir: string): ClusterState | null {
  try {
    return JSON.parse(readFileSync(join(dataDir, clusterStateFile), 'utf8')) as ClusterState;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `probe` until it gives a value, `giveUp` says stop, or `timeoutMs` passed. */
async function waitFor<T>(
  probe: () => T | null,
  timeoutMs: number,
  giveUp: () => boolean,
): Promise<T | null> {
  const deadlineUs = systemClock.nowUs() + timeoutMs * 1000;
  for (;;) {
    const value = probe();
    if (value !== null) return value;
    if (giveUp() || systemClock.nowUs() > deadlineUs) return null;
    await new Promise<void>((done) => systemClock.setTimer(pollMs * 1000, done));
  }
}

function tailOf(path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}
