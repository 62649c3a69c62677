import { execFile, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import {
  benchDefaults,
  benchModes,
  benchTimelineChart,
  formatBenchReport,
  keyOrders,
  requestDistributions,
  runBench,
  workloadNames,
  type BenchIo,
  type BenchRunReport,
} from '../bench/index.js';
import { renderLineChart } from '../bench/svg-chart.js';
import { isDinomoError } from '../errors/index.js';
import { addBenchPaperCommand } from './bench-paper-command.js';
import { FlagError, parseBenchFlags, type BenchFlagValues } from './flags.js';
import { exitCodes, type CliIo } from './program.js';

const d = benchDefaults;

/** `dinomo bench`: the benchmark runner (src/bench/bench-run.ts) on an embedded cluster. */
export function addBenchCommand(
  program: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
  charts: PngConverter = rsvgConvert,
): void {
  const bench = program
    .command('bench')
    .description(
      'start an embedded cluster in a mode, load keys, run a workload (closed or open loop) with ' +
        'warm-up and repetitions, and print a summary table and a per-second timeline',
    )
    .option('--mode <mode>', `engine: ${benchModes.join(' | ')} (default ${d.mode})`)
    .option('--workload <name>', `${workloadNames.join(' | ')} (default ${d.workload})`)
    .option('--kns <n>', `KN count (default ${d.kns})`)
    .option('--threads <n>', `KN threads per KN (default ${d.threadsPerKn})`)
    .option('--duration <sec>', `measured seconds per repetition (default ${d.durationSec})`)
    .option(
      '--warmup <sec>',
      `unrecorded seconds before each repetition's measured phase (default ${d.warmupSec})`,
    )
    .option(
      '--repetitions <n>',
      `warm-up + measured runs on the loaded cluster; ops/s is their median (default ${d.repetitions})`,
    )
    .option('--keys <n>', `keys to load and use (default ${d.keys})`)
    .option('--value-bytes <n>', `value size in bytes, e.g. 1000 or 4k (default ${d.valueBytes})`)
    .option('--zipf <s>', `Zipf exponent of zipf and latest, 0 for uniform (default ${d.zipf})`)
    .option(
      '--distribution <name>',
      `key distribution: ${requestDistributions.join(' | ')} (default: the workload's)`,
    )
    .option(
      '--key-order <order>',
      `${keyOrders.join(' | ')}: scrambled spreads hot keys over the key space, original makes ` +
        `the smallest key numbers hottest, as the original benchmark did (default ${d.keyOrder})`,
    )
    .option(
      '--concurrency <n>',
      `closed loop: operations in flight; also puts in flight while loading (default ${d.concurrency})`,
    )
    .option(
      '--rate <ops/s>',
      'run an open loop starting this many operations per second (default: closed loop)',
    )
    .option(
      '--max-in-flight <n>',
      `open loop: operations in flight at most, later ones are dropped (default ${d.maxInFlight})`,
    )
    .option(
      '--cache-bytes <n>',
      'DAC bytes per KN thread, e.g. 8MiB (default: the cluster default, 8MiB)',
    )
    .option(
      '--region-bytes <n>',
      'DPM region bytes, e.g. 256MiB (default: the cluster default, 256MiB)',
    )
    .option('--seed <n>', 'seed of the workload generator (default: random, printed for replay)')
    .option('--json', 'print only the report as one JSON object on stdout (default: off)')
    .option(
      '--timeline-svg <file>',
      'write the throughput-over-time chart as SVG, and a PNG next to it when rsvg-convert ' +
        '(librsvg) is on PATH (default: no chart)',
    )
    .option('--no-progress', 'do not draw the progress bar (default: drawn on a terminal)')
    .addHelpText('after', benchHelp())
    .action(async (flags: BenchFlagValues) => setExitCode(await benchCommand(flags, io, charts)));
  addBenchPaperCommand(bench, io, setExitCode, charts);
}

function benchHelp(): string {
  return [
    '',
    'The progress bar and log lines go to stderr; stdout gets the summary table and the timeline,',
    'or with --json one object: mode, workload, kns, threadsPerKn, loop, opsPerSec, latencyUs,',
    'rtsPerOp, hitRatio, missCostRts, dpmBytesUsed, cacheBytesUsed, ops, errors, durationSec,',
    'dropped, repetitions, timeline, load, config (docs/cli.md).',
    'Modes other than dinomo need an engine that runs them; if the cluster refuses the mode, the',
    'command says so and exits with code 2. Exit codes: 0 ok, 1 the run failed, 2 usage error.',
    '',
    'Example:',
    '  dinomo bench --mode dinomo --workload ycsb-b --kns 2 --duration 30 --repetitions 3 --json',
    '',
    '"dinomo bench paper --help": the paper\'s comparisons (modes, scaling, elasticity) in one run.',
    '',
  ].join('\n');
}

async function benchCommand(
  flags: BenchFlagValues,
  io: CliIo,
  charts: PngConverter,
): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo bench: ${message}\n`);
  let parsed;
  try {
    parsed = parseBenchFlags(flags);
    if (parsed.timelineSvg !== null) checkOutputPath('--timeline-svg', parsed.timelineSvg);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    fail(`${err.code}: ${err.message}`);
    fail('nothing was started; "dinomo bench --help" lists every flag with its default');
    return exitCodes.usage;
  }
  const progress =
    parsed.progress && !parsed.json && io.stderrIsTty ? (io.createProgress?.() ?? null) : null;
  const benchIo: BenchIo = { log: (line) => fail(line), progress };
  if (io.clock !== undefined) benchIo.clock = io.clock;
  let report: BenchRunReport;
  try {
    const clusterClass = await io.loadCluster();
    report = await runBench(clusterClass, parsed.options, benchIo);
  } catch (err) {
    return runFailure(err, parsed.options.mode, fail);
  }
  io.stdout.write(parsed.json ? `${JSON.stringify(report)}\n` : formatBenchReport(report));
  if (parsed.timelineSvg === null) return exitCodes.ok;
  let chart: ChartFiles;
  try {
    chart = await writeTimelineChart(parsed.timelineSvg, report, charts);
  } catch (err) {
    fail(`cannot write the chart: ${err instanceof Error ? err.message : String(err)}`);
    return exitCodes.failed;
  }
  fail(`wrote ${chart.svg}${chart.png === null ? '' : ` and ${chart.png}`}`);
  // The PNG is a convenience: without it the command still did what it was asked.
  if (chart.pngError !== null) fail(`no PNG: ${chart.pngError}`);
  return exitCodes.ok;
}

/**
 * A failed run, as a message and an exit code, never a stack: a mode or an option the cluster
 * refuses is a usage error (2), anything else a run-time failure (1). A DinomoError's message
 * already starts with its code and ends with its hint.
 */
function runFailure(err: unknown, mode: string, fail: (message: string) => void): number {
  fail(err instanceof Error ? err.message : String(err));
  if (isDinomoError(err) && (err.code === 'NOT_SUPPORTED' || err.code === 'INVALID_OPTION')) {
    // NOT_SUPPORTED is how a cluster refuses a mode it does not run yet.
    if (err.code === 'NOT_SUPPORTED' && mode !== benchDefaults.mode) {
      fail(
        `--mode ${mode} needs a cluster that runs it; --mode ${benchDefaults.mode} runs in every build`,
      );
    }
    return exitCodes.usage;
  }
  return exitCodes.failed;
}

/** Fails before anything runs if the chart could not be written: its directory must exist. */
function checkOutputPath(flag: string, path: string): void {
  const dir = dirname(resolve(path));
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new FlagError(flag, `names a file in ${dir}, which is not a directory`);
}

/** Turns an SVG file into a PNG; `available` is asked once per chart. */
export interface PngConverter {
  available(): boolean;
  convert(svgPath: string, pngPath: string): Promise<void>;
}

const execFileAsync = promisify(execFile);

/** librsvg's `rsvg-convert`, when it is on PATH. */
export const rsvgConvert: PngConverter = {
  available: () => {
    const probe = spawnSync('rsvg-convert', ['--version'], { stdio: 'ignore', timeout: 5000 });
    return probe.error === undefined && probe.status === 0;
  },
  convert: async (svgPath, pngPath) => {
    await execFileAsync('rsvg-convert', ['-f', 'png', '-o', pngPath, svgPath], {
      timeout: 60_000,
    });
  },
};

export interface ChartFiles {
  svg: string;
  /** The PNG written next to the SVG, or null. */
  png: string | null;
  /** Why there is no PNG: no converter, or its error. Null when the PNG was written. */
  pngError: string | null;
}

/**
 * Writes the throughput-over-time chart to `svgPath` (an error here is thrown), and a PNG next to
 * it (the same name with `.png`) when the converter is available; a converter that fails leaves the
 * SVG and says why in `pngError`.
 */
export async function writeTimelineChart(
  svgPath: string,
  report: BenchRunReport,
  converter: PngConverter = rsvgConvert,
): Promise<ChartFiles> {
  await writeFile(svgPath, renderLineChart(benchTimelineChart(report)));
  if (!converter.available()) {
    return { svg: svgPath, png: null, pngError: 'rsvg-convert (librsvg) is not on PATH' };
  }
  const pngPath = /\.svg$/i.test(svgPath) ? svgPath.replace(/\.svg$/i, '.png') : `${svgPath}.png`;
  try {
    await converter.convert(svgPath, pngPath);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { svg: svgPath, png: null, pngError: `converting to ${pngPath} failed: ${message}` };
  }
  return { svg: svgPath, png: pngPath, pngError: null };
}
