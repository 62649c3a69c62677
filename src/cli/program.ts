import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import {
  demoDefaults,
  formatReport,
  runDemo,
  workloadNames,
  type BenchClusterClass,
  type DemoIo,
  type DemoProgress,
} from '../bench/index.js';
import { isDinomoError } from '../errors/index.js';
import type { Clock } from '../time/index.js';
import { FlagError, parseDemoFlags, type DemoFlagValues } from './flags.js';

/** Exit codes: 0 success, 1 the command failed while running, 2 bad usage (flags, options). */
export const exitCodes = { ok: 0, failed: 1, usage: 2 } as const;

export interface TextSink {
  write(text: string): unknown;
}

/** What the CLI touches outside itself, so tests can run it without a terminal or a real cluster. */
export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  /** Whether stderr is a terminal: the progress bar is drawn only then. */
  stderrIsTty: boolean;
  /** The Cluster class, loaded on demand so that `--help` needs no cluster code. */
  loadCluster: () => Promise<BenchClusterClass>;
  createProgress?: () => DemoProgress;
  /** The clock of the demo; tests pass a virtual one. Default: the system clock. */
  clock?: Clock;
}

/** Runs the CLI on `argv` (without `node` and the script) and resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = exitCodes.ok;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    // Help and version end with exit code 0; every other commander error is a usage error.
    const benign = ['commander.helpDisplayed', 'commander.version'].includes(err.code);
    return benign ? exitCodes.ok : exitCodes.usage;
  }
  return exitCode;
}

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('dinomo')
    .description('DINOMO: a key-value store for disaggregated persistent memory')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showHelpAfterError('(run "dinomo help <command>" for the options)');
  program
    .command('demo')
    .description('start an embedded cluster, load keys, run a workload and print a report')
    .option('--kns <n>', `KN count (default ${demoDefaults.kns})`)
    .option('--threads <n>', `KN threads per KN (default ${demoDefaults.threadsPerKn})`)
    .option('--keys <n>', `keys to load and use (default ${demoDefaults.keys})`)
    .option(
      '--duration <sec>',
      `length of the measured run in seconds (default ${demoDefaults.durationSec})`,
    )
    .option('--workload <name>', `${workloadNames.join(' | ')} (default ${demoDefaults.workload})`)
    .option('--zipf <s>', `Zipf exponent, 0 for uniform (default ${demoDefaults.zipf})`)
    .option(
      '--scramble',
      'spread hot keys over the key space instead of using the smallest key numbers',
    )
    .option('--value-bytes <n>', `value size in bytes (default ${demoDefaults.valueBytes})`)
    .option('--concurrency <n>', `operations in flight (default ${demoDefaults.concurrency})`)
    .option(
      '--cache-bytes <n>',
      'DAC bytes per KN thread, e.g. 8MiB (default: the cluster default)',
    )
    .option('--region-bytes <n>', 'DPM region bytes, e.g. 256MiB (default: the cluster default)')
    .option('--seed <n>', 'seed of the workload generator (default: random, printed for replay)')
    .option('--json', 'print only the report as one JSON object on stdout')
    .action(async (flags: DemoFlagValues) => setExitCode(await demoCommand(flags, io)));
  return program;
}

async function demoCommand(flags: DemoFlagValues, io: CliIo): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo demo: ${message}\n`);
  let parsed;
  try {
    parsed = parseDemoFlags(flags);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    fail(err.message);
    return exitCodes.usage;
  }
  // The bar goes to stderr, and only to a terminal: piped or --json output stays free of escape codes.
  const progress = !parsed.json && io.stderrIsTty ? (io.createProgress?.() ?? null) : null;
  const demoIo: DemoIo = {
    log: (line) => void io.stderr.write(`dinomo demo: ${line}\n`),
    progress,
  };
  if (io.clock !== undefined) demoIo.clock = io.clock;
  try {
    const clusterClass = await io.loadCluster();
    const report = await runDemo(clusterClass, parsed.options, demoIo);
    io.stdout.write(parsed.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return exitCodes.ok;
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    // A cluster option the cluster itself rejects is still a usage error.
    return isDinomoError(err) && err.code === 'INVALID_OPTION' ? exitCodes.usage : exitCodes.failed;
  }
}

/** The version in package.json, which sits two levels up from both src/cli and dist/cli. */
function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const parsed = JSON.parse(text) as { version?: unknown };
    return typeof parsed.version === 'string' ? parsed.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
