import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import {
  benchModes,
  checkModesStart,
  elasticChart,
  elasticSecondEvents,
  formatPaperSummary,
  isWorkloadName,
  maxZipfKeys,
  paperDefaults,
  paperNetworks,
  paperSection,
  runPaper,
  scalingChart,
  upsertMarkedSection,
  workloadNames,
  type BenchMode,
  type ElasticSecondEvent,
  type PaperIo,
  type PaperMeta,
  type PaperOptions,
  type PaperResult,
  type WorkloadName,
} from '../bench/index.js';
import { maxModelKns } from '../bench/cost-model.js';
import { renderLineChart, type LineChartSpec } from '../bench/svg-chart.js';
import { regionBytesMax } from '../config/limits.js';
import { valueBytesMax } from '../config/index.js';
import { isDinomoError } from '../errors/index.js';
import { entropySeed } from '../util/index.js';
import { FlagError, parseBytes, parseInteger, parseNumber } from './flags.js';
import { exitCodes, type CliIo } from './program.js';
import type { PngConverter } from './bench-command.js';

/** The raw flag values of `dinomo bench paper`. `progress` is false with `--no-progress`. */
export interface PaperFlagValues {
  modes?: string;
  workloads?: string;
  kns?: string;
  threads?: string;
  duration?: string;
  warmup?: string;
  repetitions?: string;
  keys?: string;
  valueBytes?: string;
  cacheBytes?: string;
  regionBytes?: string;
  measuredKns?: string;
  scalingWorkload?: string;
  elasticModes?: string;
  elasticDuration?: string;
  elasticEvent?: string;
  dipFraction?: string;
  outDir?: string;
  doc?: string;
  seed?: string;
  json?: boolean;
  progress?: boolean;
}

export interface ParsedPaperFlags {
  options: PaperOptions;
  outDir: string;
  doc: string;
  json: boolean;
  progress: boolean;
  seedGiven: boolean;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const p = paperDefaults;

/** The paper run's region: clover keeps every version it writes, so it needs room (1 GiB). */
export const paperRegionBytes = GiB;

export const paperOutputDefaults = { outDir: 'docs/figures', doc: 'docs/benchmarks.md' } as const;

/**
 * Validates every flag of `dinomo bench paper` and fills the defaults. Touches nothing: a bad flag
 * throws a FlagError naming it. Paths are checked by `checkPaperPaths`.
 */
export function parsePaperFlags(
  raw: PaperFlagValues,
  drawSeed: () => number = entropySeed,
): ParsedPaperFlags {
  const modes = parseList('--modes', raw.modes, p.modes, (v) => oneMode('--modes', v));
  const workloads = parseList('--workloads', raw.workloads, p.workloads, (v) =>
    oneWorkload('--workloads', v),
  );
  const kns = parseInteger('--kns', raw.kns, 1, 64, p.kns);
  const threadsPerKn = parseInteger('--threads', raw.threads, 1, 64, p.threadsPerKn);
  const measuredKns = parseList('--measured-kns', raw.measuredKns, p.measuredKns, (v) =>
    parseInteger('--measured-kns', v, 1, maxModelKns),
  );
  for (const n of [kns, ...measuredKns]) {
    if (n * threadsPerKn > 1024) {
      throw new FlagError(
        '--threads',
        `times the KN count must be at most 1024 KN threads (got ${n * threadsPerKn})`,
      );
    }
  }
  const elasticModes = parseList('--elastic-modes', raw.elasticModes, p.elasticModes, (v) =>
    oneMode('--elastic-modes', v),
  );
  const elasticEvent = raw.elasticEvent ?? p.elasticSecond;
  if (!(elasticSecondEvents as readonly string[]).includes(elasticEvent)) {
    throw new FlagError(
      '--elastic-event',
      `must be one of ${elasticSecondEvents.join(', ')} (got "${elasticEvent}")`,
    );
  }
  const durationSec = parseNumber('--duration', raw.duration, 0.1, 3600, p.durationSec);
  const elasticDurationSec = parseNumber(
    '--elastic-duration',
    raw.elasticDuration,
    0.5,
    3600,
    p.elasticDurationSec,
  );
  const dipFraction = parseNumber('--dip-fraction', raw.dipFraction, 0, 1, p.dipFraction);
  if (dipFraction === 0) {
    throw new FlagError('--dip-fraction', 'must be above 0 and at most 1 (got "0")');
  }
  const options: PaperOptions = {
    modes,
    workloads,
    kns,
    threadsPerKn,
    durationSec,
    warmupSec: parseNumber('--warmup', raw.warmup, 0, 3600, p.warmupSec),
    repetitions: parseInteger('--repetitions', raw.repetitions, 1, 100, p.repetitions),
    keys: parseInteger('--keys', raw.keys, 1, maxZipfKeys, p.keys),
    valueBytes: parseBytes('--value-bytes', raw.valueBytes, 0, valueBytesMax) ?? p.valueBytes,
    cacheBytesPerThread:
      parseBytes('--cache-bytes', raw.cacheBytes, 0, 16 * GiB) ?? p.cacheBytesPerThread,
    regionBytes:
      parseBytes('--region-bytes', raw.regionBytes, 16 * MiB, regionBytesMax) ?? paperRegionBytes,
    concurrency: p.concurrency,
    measuredKns,
    scalingWorkload: oneWorkload('--scaling-workload', raw.scalingWorkload ?? p.scalingWorkload),
    modelKns: [...p.modelKns],
    elasticModes,
    elasticDurationSec,
    elasticSecond: elasticEvent as ElasticSecondEvent,
    timelineBucketMs: p.timelineBucketMs,
    dipFraction,
    dipBaselineBuckets: p.dipBaselineBuckets,
    seed: raw.seed === undefined ? drawSeed() : parseInteger('--seed', raw.seed, 0, 2 ** 32 - 1),
  };
  // The dip baseline needs buckets before the first event, a third into the run.
  if ((elasticDurationSec * 1000) / 3 < options.timelineBucketMs) {
    throw new FlagError(
      '--elastic-duration',
      `must leave at least one ${options.timelineBucketMs} ms bucket before the first event ` +
        `(a third into the run), so at least ${(3 * options.timelineBucketMs) / 1000} s`,
    );
  }
  const outDir = raw.outDir ?? paperOutputDefaults.outDir;
  const doc = raw.doc ?? paperOutputDefaults.doc;
  if (outDir.trim() === '') throw new FlagError('--out-dir', 'needs a directory path');
  if (doc.trim() === '') throw new FlagError('--doc', 'needs a file path');
  return {
    options,
    outDir,
    doc,
    json: raw.json ?? false,
    progress: raw.progress ?? true,
    seedGiven: raw.seed !== undefined,
  };
}

/** A comma-separated list: no empty entries, no repeats. */
function parseList<T>(
  flag: string,
  text: string | undefined,
  fallback: readonly T[],
  parse: (value: string) => T,
): T[] {
  if (text === undefined) return [...fallback];
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((s) => s === '')) {
    throw new FlagError(
      flag,
      `must be a comma-separated list without empty entries (got "${text}")`,
    );
  }
  const values = parts.map(parse);
  const seen = new Set<string>();
  for (const [i, v] of values.entries()) {
    const key = String(v);
    if (seen.has(key)) throw new FlagError(flag, `lists ${parts[i] ?? key} twice (got "${text}")`);
    seen.add(key);
  }
  return values;
}

function oneMode(flag: string, value: string): BenchMode {
  if (!(benchModes as readonly string[]).includes(value)) {
    throw new FlagError(flag, `takes modes from ${benchModes.join(', ')} (got "${value}")`);
  }
  return value as BenchMode;
}

function oneWorkload(flag: string, value: string): WorkloadName {
  if (!isWorkloadName(value)) {
    throw new FlagError(flag, `takes workloads from ${workloadNames.join(', ')} (got "${value}")`);
  }
  return value;
}

/**
 * Checks the output paths before anything runs: `--doc` must be a file or not exist yet, in an
 * existing directory; `--out-dir` must be a directory or not exist yet (it is created).
 */
export function checkPaperPaths(outDir: string, doc: string): void {
  const kind = (path: string): 'dir' | 'file' | 'none' => {
    try {
      return statSync(path).isDirectory() ? 'dir' : 'file';
    } catch {
      return 'none';
    }
  };
  if (kind(outDir) === 'file')
    throw new FlagError('--out-dir', `${outDir} is a file, not a directory`);
  if (kind(doc) === 'dir') throw new FlagError('--doc', `${doc} is a directory, not a file`);
  const docDir = dirname(resolve(doc));
  if (kind(docDir) !== 'dir') {
    throw new FlagError('--doc', `names a file in ${docDir}, which is not a directory`);
  }
}

/** The command line that replays the run, every setting explicit. */
export function paperCommandLine(parsed: ParsedPaperFlags): string {
  const o = parsed.options;
  const args = [
    'node dist/cli/main.js bench paper',
    `--modes ${o.modes.join(',')}`,
    `--workloads ${o.workloads.join(',')}`,
    `--kns ${o.kns}`,
    `--threads ${o.threadsPerKn}`,
    `--duration ${o.durationSec}`,
    `--warmup ${o.warmupSec}`,
    `--repetitions ${o.repetitions}`,
    `--keys ${o.keys}`,
    `--value-bytes ${o.valueBytes}`,
    `--cache-bytes ${o.cacheBytesPerThread}`,
    ...(o.regionBytes === null ? [] : [`--region-bytes ${o.regionBytes}`]),
    `--measured-kns ${o.measuredKns.join(',')}`,
    `--scaling-workload ${o.scalingWorkload}`,
    `--elastic-modes ${o.elasticModes.join(',')}`,
    `--elastic-duration ${o.elasticDurationSec}`,
    `--elastic-event ${o.elasticSecond}`,
    `--dip-fraction ${o.dipFraction}`,
    `--out-dir ${parsed.outDir}`,
    `--doc ${parsed.doc}`,
    `--seed ${o.seed}`,
  ];
  return args.join(' ');
}

/** Registers `dinomo bench paper` under the `bench` command. */
export function addBenchPaperCommand(
  bench: Command,
  io: CliIo,
  setExitCode: (code: number) => void,
  charts: PngConverter,
): void {
  bench
    .command('paper')
    .description(
      "run the paper's comparisons in one go: modes x workloads at an equal cache budget, " +
        'scaling with KNs (measured, then modelled), and elasticity dips; write charts and a ' +
        'markdown section',
    )
    .option('--modes <list>', `engines to compare, comma-separated (default ${p.modes.join(',')})`)
    .option(
      '--workloads <list>',
      `workloads of the equal-budget table, from ${workloadNames.join(' | ')} (default ${p.workloads.join(',')})`,
    )
    .option(
      '--kns <n>',
      `KNs of the equal-budget runs and at the elastic runs' start (default ${p.kns})`,
    )
    .option('--threads <n>', `KN threads per KN (default ${p.threadsPerKn})`)
    .option('--duration <sec>', `measured seconds per repetition (default ${p.durationSec})`)
    .option('--warmup <sec>', `unrecorded seconds before each repetition (default ${p.warmupSec})`)
    .option(
      '--repetitions <n>',
      `repetitions per configuration; ops/s is their median (default ${p.repetitions})`,
    )
    .option('--keys <n>', `keys loaded and used by every run (default ${p.keys})`)
    .option('--value-bytes <n>', `value size, e.g. 1000 or 4k (default ${p.valueBytes})`)
    .option(
      '--cache-bytes <n>',
      'the equal cache budget: DAC bytes per KN thread in every mode (default 8MiB)',
    )
    .option(
      '--region-bytes <n>',
      'DPM region bytes (default 1GiB: clover keeps every version it writes)',
    )
    .option(
      '--measured-kns <list>',
      `KN counts measured for the scaling part (default ${p.measuredKns.join(',')})`,
    )
    .option(
      '--scaling-workload <name>',
      `workload of the scaling and elasticity parts (default ${p.scalingWorkload})`,
    )
    .option(
      '--elastic-modes <list>',
      `engines of the elasticity part (default ${p.elasticModes.join(',')})`,
    )
    .option(
      '--elastic-duration <sec>',
      `length of each elastic run; a KN is added at 1/3, one leaves at 2/3 (default ${p.elasticDurationSec})`,
    )
    .option(
      '--elastic-event <kind>',
      `how the first KN leaves at 2/3: ${elasticSecondEvents.join(' | ')} (default ${p.elasticSecond})`,
    )
    .option(
      '--dip-fraction <f>',
      `a ${p.timelineBucketMs} ms bucket below this fraction of the median of the ` +
        `${p.dipBaselineBuckets} buckets before an event is in a dip, (0, 1] (default ${p.dipFraction})`,
    )
    .option(
      '--out-dir <dir>',
      `where the SVG (and PNG) charts go (default ${paperOutputDefaults.outDir})`,
    )
    .option(
      '--doc <file>',
      `markdown file whose bench-paper section is written or replaced (default ${paperOutputDefaults.doc})`,
    )
    .option('--seed <n>', 'seed of every run (default: random, printed and written in the section)')
    .option(
      '--json',
      'print the whole result as one JSON object on stdout instead of progress text (default: off)',
    )
    .option('--no-progress', 'no progress bar (default: drawn on a terminal, without --json)')
    .addHelpText('after', paperHelp())
    .action(async (flags: PaperFlagValues, command: Command) => {
      // Options given before `paper` were parsed as `dinomo bench`'s and would be ignored.
      const parentFlags = Object.entries(command.parent?.opts() ?? {}).filter(
        ([name, value]) => value !== undefined && !(name === 'progress' && value === true),
      );
      if (parentFlags.length > 0) {
        io.stderr.write(
          `dinomo bench paper: INVALID_OPTION: put the options after "paper" ` +
            `(got ${parentFlags.map(([name]) => name).join(', ')} before it)\n`,
        );
        setExitCode(exitCodes.usage);
        return;
      }
      setExitCode(await paperCommand(flags, io, charts));
    });
}

function paperHelp(): string {
  return [
    '',
    'Runs, each on its own embedded cluster: every mode x workload with the same keys, KNs, threads,',
    'cache bytes per thread, duration and seed; the scaling workload at each --measured-kns per mode',
    '(the equal-budget run is reused where it is the same configuration), then the cost model for 1 to',
    '16 KNs on the fdr and this-machine-shm networks (every modelled number labelled as a model); and',
    'per --elastic-modes mode an elastic run with 100 ms buckets and its throughput dips.',
    'Writes paper-scaling-<network>.svg and paper-elastic-<mode>.svg (and PNGs with rsvg-convert) to',
    '--out-dir, and the section between <!-- bench-paper:begin --> and <!-- bench-paper:end --> of',
    '--doc (appended when the markers are absent; the rest of the file is left alone).',
    'Progress lines go to stderr; stdout gets the summary tables, or with --json one object.',
    'Exit codes: 0 ok, 1 a run failed, 2 usage error (a bad flag, or a mode the cluster refuses).',
    '',
    'Example:',
    '  dinomo bench paper --modes dinomo,clover,dinomo-n --seed 1',
    '',
  ].join('\n');
}

async function paperCommand(
  flags: PaperFlagValues,
  io: CliIo,
  charts: PngConverter,
): Promise<number> {
  const fail = (message: string): void => void io.stderr.write(`dinomo bench paper: ${message}\n`);
  let parsed: ParsedPaperFlags;
  try {
    parsed = parsePaperFlags(flags);
    checkPaperPaths(parsed.outDir, parsed.doc);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    fail(`${err.code}: ${err.message}`);
    fail('nothing was started; "dinomo bench paper --help" lists every flag with its default');
    return exitCodes.usage;
  }
  const log = parsed.json ? (): void => undefined : (line: string): void => fail(line);
  if (!parsed.seedGiven)
    log(`seed ${parsed.options.seed} (replay with --seed ${parsed.options.seed})`);
  const progress =
    parsed.progress && !parsed.json && io.stderrIsTty ? (io.createProgress?.() ?? null) : null;
  const paperIo: PaperIo = { log, progress };
  if (io.clock !== undefined) paperIo.clock = io.clock;
  let result: PaperResult;
  try {
    const clusterClass = await io.loadCluster();
    // A mode the cluster refuses is found in a second, not after minutes of the other modes' runs.
    await checkModesStart(clusterClass, parsed.options);
    result = await runPaper(clusterClass, parsed.options, paperIo);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
    return isDinomoError(err) && (err.code === 'NOT_SUPPORTED' || err.code === 'INVALID_OPTION')
      ? exitCodes.usage
      : exitCodes.failed;
  }
  let written: WrittenFiles;
  try {
    written = await writePaperOutputs(parsed, result, charts);
  } catch (err) {
    fail(`cannot write the results: ${err instanceof Error ? err.message : String(err)}`);
    if (parsed.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    return exitCodes.failed;
  }
  for (const note of written.notes) log(note);
  if (parsed.json) {
    io.stdout.write(`${JSON.stringify({ ...result, files: written.files })}\n`);
  } else {
    io.stdout.write(formatPaperSummary(result));
    io.stdout.write(`\nwrote ${written.files.join(', ')}\n`);
  }
  return exitCodes.ok;
}

interface WrittenFiles {
  files: string[];
  notes: string[];
}

/** Writes the charts (SVG, PNG when possible) and the doc section; returns what it wrote. */
export async function writePaperOutputs(
  parsed: Pick<ParsedPaperFlags, 'outDir' | 'doc'> & Partial<ParsedPaperFlags>,
  result: PaperResult,
  converter: PngConverter,
  meta: Partial<PaperMeta> = {},
): Promise<WrittenFiles> {
  await mkdir(parsed.outDir, { recursive: true });
  const cpuCount = cpus().length;
  const charts: { name: string; title: string; spec: LineChartSpec }[] = [
    ...paperNetworks
      .filter((n) => result.scaling.models.some((m) => m.network === n.name))
      .map((n) => ({
        name: `paper-scaling-${n.name}.svg`,
        title: `Throughput vs KNs: measured, then modelled (${n.name})`,
        spec: scalingChart(result, n.name, cpuCount),
      })),
    ...result.elasticity.map((run) => ({
      name: `paper-elastic-${run.mode}.svg`,
      title: `${run.mode}: throughput over time with a KN added and one ${result.options.elasticSecond === 'fail' ? 'failed' : 'removed'}`,
      spec: elasticChart(run, result.options),
    })),
  ];
  const files: string[] = [];
  const notes: string[] = [];
  const usePng = charts.length > 0 && converter.available();
  if (!usePng && charts.length > 0) notes.push('no PNGs: rsvg-convert (librsvg) is not on PATH');
  const docDir = dirname(resolve(parsed.doc));
  const figures: PaperMeta['figures'] = [];
  for (const chart of charts) {
    const svgPath = join(parsed.outDir, chart.name);
    await writeFile(svgPath, renderLineChart(chart.spec));
    files.push(svgPath);
    figures.push({
      title: chart.title,
      path: relative(docDir, resolve(svgPath)).split(sep).join('/'),
    });
    if (usePng) {
      const pngPath = svgPath.replace(/\.svg$/, '.png');
      try {
        await converter.convert(svgPath, pngPath);
        files.push(pngPath);
      } catch (err) {
        notes.push(`no PNG for ${svgPath}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  const fullMeta: PaperMeta = {
    commandLine:
      parsed.options === undefined
        ? 'node dist/cli/main.js bench paper'
        : paperCommandLine(parsed as ParsedPaperFlags),
    cpus: cpuCount,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    nodeVersion: process.version,
    platform: `${process.platform} ${process.arch}`,
    totalMemBytes: totalmem(),
    commit: gitCommit(),
    date: new Date().toISOString(),
    figures,
    ...meta,
  };
  let doc = '';
  try {
    doc = await readFile(parsed.doc, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await writeFile(parsed.doc, upsertMarkedSection(doc, paperSection(result, fullMeta)));
  files.push(parsed.doc);
  return { files, notes };
}

function gitCommit(): string | null {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 });
  return r.status === 0 && typeof r.stdout === 'string' && r.stdout.trim() !== ''
    ? r.stdout.trim()
    : null;
}
