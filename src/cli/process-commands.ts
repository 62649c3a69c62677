import type { Command } from 'commander';
import { KnProcess } from '../cluster/kn-process.js';
import { MonitorServer } from '../cluster/monitor-server.js';
import type { HostPort } from '../cluster/monitor-protocol.js';
import { fillOptions, type ClusterOptions } from '../config/index.js';
import { isDinomoError } from '../errors/index.js';
import { FlagError, parseBytes, parseInteger } from './flags.js';
import { exitCodes, type CliIo } from './program.js';
import { readSecret } from './secret.js';

interface MonitorFlags {
  dpm?: string;
  kns?: string;
  threads?: string;
  maxKns?: string;
  cacheBytes?: string;
  host?: string;
  port?: string;
  secretFile?: string;
}

interface KnFlags {
  monitor?: string;
  threads?: string;
  host?: string;
  secretFile?: string;
}

const secretHelp =
  'file holding the cluster secret (default: the DINOMO_SECRET environment variable)';

/** `dinomo monitor` and `dinomo kn`: the M-node + RN process and a KN process. */
export function addProcessCommands(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('monitor')
    .description(
      'run the monitor (M-node and routing service) of a multi-process cluster: it records the slot ' +
        'map in the DPM, admits KN processes, grants leases, fails silent KNs over and answers ' +
        'clients; prints one JSON line when ready and runs until SIGTERM or SIGINT',
    )
    .option('--dpm <host:port>', 'the control port of dinomo dpm (required)')
    .option('--kns <n>', 'KNs of the initial slot map (default 1)')
    .option('--threads <n>', 'KN threads per KN (default 2)')
    .option('--max-kns <n>', 'KNs the cluster may have over its run (default kns + 4)')
    .option('--cache-bytes <n>', 'DAC bytes per KN thread, e.g. 8MiB (default 8MiB)')
    .option('--host <addr>', 'interface of the control port (default 127.0.0.1)')
    .option('--port <n>', 'control port (default: a free port, printed when ready)')
    .option('--secret-file <path>', secretHelp)
    .action(async (flags: MonitorFlags) => setExitCode(await monitorCommand(flags, io)));
  program
    .command('kn')
    .description(
      'run a KN process: it joins the cluster through the monitor and serves clients on one data ' +
        'port per thread; prints one JSON line when ready and runs until SIGTERM or SIGINT',
    )
    .option('--monitor <host:port>', 'the control port of dinomo monitor (required)')
    .option('--threads <n>', 'KN threads (default 2; must match the monitor)')
    .option('--host <addr>', 'interface of the data ports and fabric endpoints (default 127.0.0.1)')
    .option('--secret-file <path>', secretHelp)
    .action(async (flags: KnFlags) => setExitCode(await knCommand(flags, io)));
}

async function monitorCommand(flags: MonitorFlags, io: CliIo): Promise<number> {
  const fail = failWith(io, 'monitor');
  let server: MonitorServer;
  try {
    const dpm = parseHostPort('--dpm', flags.dpm);
    const secret = readSecret(flags.secretFile);
    const options: ClusterOptions = {
      kns: parseInteger('--kns', flags.kns, 1, 1024, 1),
      threadsPerKn: parseInteger('--threads', flags.threads, 1, 64, 2),
    };
    if (flags.maxKns !== undefined) {
      options.maxKns = parseInteger('--max-kns', flags.maxKns, 1, 1024, 1);
    }
    const cacheBytes = parseBytes('--cache-bytes', flags.cacheBytes, 64 * 1024, 2 ** 34);
    if (cacheBytes !== null) options.cacheBytesPerThread = cacheBytes;
    server = await MonitorServer.start({
      dpm,
      secret,
      host: flags.host ?? '127.0.0.1',
      port: parseInteger('--port', flags.port, 0, 65535, 0),
      options: fillOptions(options),
    });
  } catch (err) {
    return startFailure(err, fail);
  }
  io.stdout.write(`${JSON.stringify({ ready: true, port: server.port })}\n`);
  await signalled();
  await server.stop();
  return exitCodes.ok;
}

async function knCommand(flags: KnFlags, io: CliIo): Promise<number> {
  const fail = failWith(io, 'kn');
  let kn: KnProcess;
  let ended: (code: number) => void = () => {};
  const end = new Promise<number>((resolve) => (ended = resolve));
  try {
    kn = await KnProcess.start({
      monitor: parseHostPort('--monitor', flags.monitor),
      secret: readSecret(flags.secretFile),
      threads: parseInteger('--threads', flags.threads, 1, 64, 2),
      host: flags.host ?? '127.0.0.1',
      // A KN is one unit: with a thread gone, the rest must not go on (the monitor fails it over).
      onFatal: (why) => {
        fail(why);
        process.exit(exitCodes.failed);
      },
      onStopped: () => ended(exitCodes.ok),
    });
  } catch (err) {
    return startFailure(err, fail);
  }
  io.stdout.write(
    `${JSON.stringify({ ready: true, knId: kn.knId, ranks: kn.ranks, endpoints: kn.endpoints })}\n`,
  );
  const code = await Promise.race([end, signalled().then(() => exitCodes.ok)]);
  await kn.stop();
  return code;
}

function failWith(io: CliIo, name: string): (message: string) => void {
  return (message) => void io.stderr.write(`dinomo ${name}: ${message}\n`);
}

function startFailure(err: unknown, fail: (message: string) => void): number {
  fail(err instanceof Error ? err.message : String(err));
  if (err instanceof FlagError) return exitCodes.usage;
  const usage = isDinomoError(err) && ['INVALID_OPTION', 'NOT_SUPPORTED'].includes(err.code);
  return usage ? exitCodes.usage : exitCodes.failed;
}

function signalled(): Promise<void> {
  return new Promise<void>((done) => {
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
}

/** `host:port` (a port alone means 127.0.0.1). */
export function parseHostPort(flag: string, value: string | undefined): HostPort {
  if (value === undefined || value.trim() === '') {
    throw new FlagError(flag, 'is required, as host:port (e.g. 127.0.0.1:7400)');
  }
  const at = value.lastIndexOf(':');
  const host = at < 0 ? '127.0.0.1' : value.slice(0, at);
  const port = parseInteger(flag, at < 0 ? value : value.slice(at + 1), 1, 65535, 0);
  if (host === '') throw new FlagError(flag, `needs a host before the port (got "${value}")`);
  return { host, port };
}
