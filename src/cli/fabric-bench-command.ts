import type { Command } from 'commander';
import { formatFabricBench, runFabricBench } from '../bench/fabric-bench.js';
import { isDinomoError } from '../errors/index.js';
import { FlagError, parseInteger } from './flags.js';
import { exitCodes, type CliIo } from './program.js';

interface FabricBenchFlags {
  providers?: string;
  ops?: string;
  spin?: boolean;
  json?: boolean;
}

/** `dinomo fabric-bench`: the native fabric micro-benchmark (src/bench/fabric-bench.ts). */
export function addFabricBenchCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
): void {
  program
    .command('fabric-bench')
    .description(
      'measure one-sided read, write, cas and faa from a KN process to a DPM over libfabric ' +
        '(shm, tcp on loopback), as TypeScript calls and as a C loop through the same endpoint',
    )
    .option('--providers <list>', 'comma-separated: shm, tcp (default shm,tcp)')
    .option('--ops <n>', 'timed operations per kind (default 20000)')
    .option('--spin', 'let the DPM progress thread spin without yielding the core')
    .option('--json', 'print the results as one JSON array')
    .action(async (flags: FabricBenchFlags) => setExitCode(await fabricBenchCommand(flags, io)));
}

async function fabricBenchCommand(flags: FabricBenchFlags, io: CliIo): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo fabric-bench: ${message}\n`);
  let providers: ('shm' | 'tcp')[];
  let ops: number;
  try {
    providers = parseProviders(flags.providers ?? 'shm,tcp');
    ops = parseInteger('--ops', flags.ops, 100, 1_000_000, 20_000);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    fail(err.message);
    return exitCodes.usage;
  }
  try {
    const results = await runFabricBench({
      providers,
      ops,
      warmup: Math.min(2000, ops),
      yieldProgress: flags.spin !== true,
    });
    io.stdout.write(
      flags.json === true ? `${JSON.stringify(results)}\n` : `${formatFabricBench(results)}\n`,
    );
    return exitCodes.ok;
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    return isDinomoError(err) && err.code === 'NOT_SUPPORTED' ? exitCodes.usage : exitCodes.failed;
  }
}

function parseProviders(text: string): ('shm' | 'tcp')[] {
  const names = text.split(',').map((name) => name.trim());
  const providers: ('shm' | 'tcp')[] = [];
  for (const name of names) {
    if (name !== 'shm' && name !== 'tcp') {
      throw new FlagError('--providers', `lists shm and tcp only (got "${name}")`);
    }
    if (!providers.includes(name)) providers.push(name);
  }
  return providers;
}
