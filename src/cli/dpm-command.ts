import { isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import { DpmServer, type DpmServerOptions } from '../cluster/dpm-server.js';
import { isDinomoError } from '../errors/index.js';
import { FlagError, parseBytes, parseDurability, parseInteger, parseProvider } from './flags.js';
import { readSecret } from './secret.js';
import { exitCodes, type CliIo } from './program.js';

interface DpmFlags {
  dataDir?: string;
  regionBytes?: string;
  blockBytes?: string;
  ranks?: string;
  provider?: string;
  host?: string;
  port?: string;
  secretFile?: string;
  durability?: string;
}

const MiB = 1024 ** 2;

/** `dinomo dpm`: the DPM server process (src/cluster/dpm-server.ts). */
export function addDpmCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('dpm')
    .description(
      'run the DPM server: the region in --data-dir, the merge workers, the libfabric endpoint and ' +
        'the control port; prints one JSON line when ready and runs until SIGTERM or SIGINT',
    )
    .option('--data-dir <path>', 'directory of the region file (required)')
    .option('--region-bytes <n>', 'region size for a new region, e.g. 256MiB (default 256MiB)')
    .option('--block-bytes <n>', 'log block size for a new region (default 4MiB)')
    .option('--ranks <n>', 'KN thread ranks the region has chains for (default 16)')
    .option('--provider <name>', 'libfabric provider: shm (one host) or tcp (default shm)')
    .option('--host <addr>', 'interface of the control port and tcp endpoint (default 127.0.0.1)')
    .option('--port <n>', 'control port (default: a free port, printed when ready)')
    .option(
      '--durability <mode>',
      "async (writes reach the region file's page cache) or sync (the DPM also flushes its own " +
        'records to the file where recovery needs them; default async)',
    )
    .option(
      '--secret-file <path>',
      'file holding the cluster secret (default: the DINOMO_SECRET environment variable)',
    )
    .action(async (flags: DpmFlags) => setExitCode(await dpmCommand(flags, io)));
}

async function dpmCommand(flags: DpmFlags, io: CliIo): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo dpm: ${message}\n`);
  let options;
  try {
    options = parseDpmFlags(flags);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    fail(err.message);
    return exitCodes.usage;
  }
  let server: DpmServer;
  try {
    server = await DpmServer.start({
      ...options,
      onFatal: (why) => {
        fail(why);
        process.exit(exitCodes.failed);
      },
    });
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    const usage = isDinomoError(err) && ['INVALID_OPTION', 'NOT_SUPPORTED'].includes(err.code);
    return usage ? exitCodes.usage : exitCodes.failed;
  }
  io.stdout.write(
    `${JSON.stringify({ ready: true, port: server.port, reopened: server.description.reopened })}\n`,
  );
  await new Promise<void>((done) => {
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
  await server.stop();
  return exitCodes.ok;
}

function parseDpmFlags(flags: DpmFlags): Omit<DpmServerOptions, 'onFatal'> {
  if (flags.dataDir === undefined || flags.dataDir.trim() === '') {
    throw new FlagError('--data-dir', 'is required: the directory of the region file');
  }
  const provider = parseProvider(flags.provider);
  const durability = parseDurability(flags.durability);
  const secret = readSecret(flags.secretFile);
  return {
    dataDir: isAbsolute(flags.dataDir) ? flags.dataDir : resolve(flags.dataDir),
    regionBytes: parseBytes('--region-bytes', flags.regionBytes, 16 * MiB, 2 ** 40) ?? 256 * MiB,
    blockBytes: parseBytes('--block-bytes', flags.blockBytes, 64 * 1024, 1024 * MiB) ?? 4 * MiB,
    ranks: parseInteger('--ranks', flags.ranks, 1, 1024, 16),
    provider,
    host: flags.host ?? '127.0.0.1',
    port: parseInteger('--port', flags.port, 0, 65535, 0),
    secret,
    durability,
  };
}
