import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Command, CommanderError } from 'commander';
import {
  TriggerSession,
  demoDefaults,
  formatReport,
  runDemo,
  workloadNames,
  type BenchClusterClass,
  type DemoIo,
  type DemoProgress,
  type ElasticCluster,
  type ElasticClusterClass,
  type TriggerCommand,
  type TriggerIo,
} from '../bench/index.js';
import { isDinomoError } from '../errors/index.js';
import type { Clock } from '../time/index.js';
import { addBenchCommand } from './bench-command.js';
import { addDpmCommand } from './dpm-command.js';
import { addProcessCommands } from './process-commands.js';
import { addClusterCommand } from './cluster-command.js';
import { addCrashRunCommand } from './crash-run-command.js';
import { addFabricBenchCommand } from './fabric-bench-command.js';
import {
  FlagError,
  parseDemoFlags,
  parseTriggerFlags,
  type DemoFlagValues,
  type ParsedTriggerFlags,
  type TriggerFlagValues,
} from './flags.js';
import {
  TriggerSyntaxError,
  parseTriggerLine,
  parseTriggerScript,
  triggerSyntax,
} from './trigger-commands.js';

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
  /** The clock of the demo and the trigger; tests pass a virtual one. Default: the system clock. */
  clock?: Clock;
  /** The Cluster class with KN addition, removal and failure, for `dinomo trigger`. */
  loadElasticCluster?: () => Promise<ElasticClusterClass>;
  /** Where `dinomo trigger` reads commands without --file. */
  stdin?: NodeJS.ReadableStream;
  /** Whether stdin is a terminal: the `trigger> ` prompt is shown only then. */
  stdinIsTty?: boolean;
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
    // Options belong to the command they follow: `dinomo bench paper --kns 2` is paper's --kns, not
    // bench's (which has one too). Set before the commands are added, which inherit it.
    .enablePositionalOptions()
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
    .option(
      '--elastic',
      'add a KN a third into the run and fail the first KN two thirds in; report both with the timeline',
    )
    .action(async (flags: DemoFlagValues) => setExitCode(await demoCommand(flags, io)));
  program
    .command('trigger')
    .description(
      "start an embedded cluster and run the original benchmark's trigger commands " +
        '(LOAD, RUN, WARM, WARM-RUN, ADD, REMOVE, FAIL) from a file or stdin',
    )
    .option(
      '--file <path>',
      'run the commands of a script (checked in full before anything starts); default: read stdin',
    )
    .option('--kns <n>', `KN count at start (default ${demoDefaults.kns})`)
    .option('--threads <n>', `KN threads per KN (default ${demoDefaults.threadsPerKn})`)
    .option(
      '--cache-bytes <n>',
      'DAC bytes per KN thread, e.g. 8MiB (default: the cluster default)',
    )
    .option('--region-bytes <n>', 'DPM region bytes, e.g. 256MiB (default: the cluster default)')
    .option(
      '--seed <n>',
      'seed of the key and mix generators (default: random, printed for replay)',
    )
    .addHelpText('after', triggerHelp())
    .action(async (flags: TriggerFlagValues) => setExitCode(await triggerCommand(flags, io)));
  addBenchCommand(program, io, setExitCode);
  addFabricBenchCommand(program, io, setExitCode);
  addDpmCommand(program, io, setExitCode);
  addProcessCommands(program, io, setExitCode);
  addClusterCommand(program, io, setExitCode);
  addCrashRunCommand(program, io, setExitCode);
  return program;
}

function triggerHelp(): string {
  const s = triggerSyntax;
  return [
    '',
    "Commands, one per line (the original trigger's syntax; the name is case-insensitive):",
    `  ${s.LOAD}`,
    '      put keys 0 .. num_keys-1; threads and nodes are accepted and ignored',
    `  ${s.RUN}`,
    '      closed-loop run in the background: a report line every period, a summary at the end;',
    '      num_outstanding is the total in flight; is_update_only 0 makes puts insert new keys',
    `  ${s.WARM}`,
    '      get num_requests keys drawn from the distribution, remembered for WARM-RUN',
    `  ${s['WARM-RUN']}`,
    "      like RUN, replaying WARM's keys cyclically",
    `  ${s.ADD}          add n KNs, one after another`,
    `  ${s.REMOVE}       remove the n most recently added KNs gracefully (at least one stays)`,
    `  ${s.FAIL}         fail the n oldest live KNs abruptly (at least one stays)`,
    '  In the original, ADD and REMOVE scaled benchmark pods and FAIL removed memory pods; here all',
    '  three change the KNs of the embedded cluster. LOAD, WARM, ADD, REMOVE and FAIL finish before',
    '  the next command starts; RUN and WARM-RUN do not.',
    'Extensions (not in the original):',
    `  ${s.SLEEP}  pause the script     ${s.WAIT}  wait for the background runs`,
    `  ${s.STATS}          cluster counters  ${s.QUIT} or ${s.EXIT}  end, like the end of input`,
    '  # starts a comment; blank lines are ignored',
    'A script (--file) with a bad line is not run (exit 2); a command that fails stops it (exit 1).',
    'At the end of the input the console waits for the background runs and stops the cluster.',
    '',
  ].join('\n');
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

async function triggerCommand(flags: TriggerFlagValues, io: CliIo): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo trigger: ${message}\n`);
  let parsed: ParsedTriggerFlags;
  try {
    parsed = parseTriggerFlags(flags);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    fail(err.message);
    return exitCodes.usage;
  }
  // A script is checked in full before the cluster starts: with one bad line, nothing runs.
  let script: TriggerCommand[] | null = null;
  if (parsed.file !== null) {
    let text: string;
    try {
      text = await readFile(parsed.file, 'utf8');
    } catch (err) {
      fail(`cannot read ${parsed.file}: ${err instanceof Error ? err.message : String(err)}`);
      return exitCodes.usage;
    }
    const { commands, errors } = parseTriggerScript(text);
    for (const error of errors)
      fail(`${parsed.file}: ${error.message}\n  expected: ${error.usage}`);
    if (errors.length > 0) {
      fail(`${errors.length === 1 ? 'a bad line' : `${errors.length} bad lines`}: nothing was run`);
      return exitCodes.usage;
    }
    script = commands;
  } else if (io.stdin === undefined) {
    fail('no --file given and no standard input to read commands from');
    return exitCodes.usage;
  }
  let cluster: ElasticCluster;
  try {
    if (io.loadElasticCluster === undefined) throw new Error('no elastic cluster in this build');
    const clusterClass = await io.loadElasticCluster();
    const { kns, threadsPerKn } = parsed.cluster;
    fail(`starting an embedded cluster: ${kns} KN x ${threadsPerKn} threads (seed ${parsed.seed})`);
    cluster = await clusterClass.start(parsed.cluster);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    return isDinomoError(err) && err.code === 'INVALID_OPTION' ? exitCodes.usage : exitCodes.failed;
  }
  const interactive = script === null && io.stdinIsTty === true;
  const triggerIo: TriggerIo = {
    log: (line) => void io.stdout.write(`${line}\n`),
    error: (line) => fail(line),
  };
  if (io.clock !== undefined) triggerIo.clock = io.clock;
  // Echo the commands of a script or a pipe, so the output reads as a transcript.
  const session = new TriggerSession(cluster, triggerIo, { seed: parsed.seed, echo: !interactive });
  let stopFailed = false;
  try {
    if (script !== null) await runScript(session, script, fail);
    else await runConsole(session, io, interactive, fail);
    await session.waitForRuns();
  } finally {
    await cluster.stop().catch((err: unknown) => {
      stopFailed = true;
      fail(`stopping the cluster failed: ${err instanceof Error ? err.message : String(err)}`);
    });
  }
  // A script reports failures in its exit code; at a console, the user has seen them already.
  return stopFailed || (script !== null && session.failures > 0) ? exitCodes.failed : exitCodes.ok;
}

async function runScript(
  session: TriggerSession,
  script: readonly TriggerCommand[],
  fail: (message: string) => void,
): Promise<void> {
  for (const command of script) {
    const outcome = await session.execute(command);
    if (outcome === 'quit') return;
    if (outcome === 'failed') {
      fail(`the script stops at line ${command.line}`);
      return;
    }
  }
}

/** Reads commands line by line; a bad line is reported and skipped, and the console goes on. */
async function runConsole(
  session: TriggerSession,
  io: CliIo,
  interactive: boolean,
  fail: (message: string) => void,
): Promise<void> {
  if (io.stdin === undefined) return;
  const lines = createInterface({ input: io.stdin, crlfDelay: Infinity, terminal: false });
  const prompt = (): void => void (interactive && io.stdout.write('trigger> '));
  if (interactive)
    fail('type commands such as LOAD:1000:100, end with QUIT or Ctrl-D (--help lists them)');
  prompt();
  let lineNumber = 0;
  try {
    for await (const text of lines) {
      lineNumber++;
      let command: TriggerCommand | null;
      try {
        command = parseTriggerLine(text, lineNumber);
      } catch (err) {
        if (!(err instanceof TriggerSyntaxError)) throw err;
        fail(`${err.message}\n  expected: ${err.usage}`);
        prompt();
        continue;
      }
      if (command !== null && (await session.execute(command)) === 'quit') return;
      prompt();
    }
  } finally {
    lines.close();
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
