/**
 * `npm run lincheck -- --runs N --seed S [--export DIR] [--mutants] [--mutant NAME] [--shrink]`
 *
 * The longer tier of the linearizability suite: bigger generated scenarios than the fast tier in
 * `npm test`, any seed, optional export of every checked history as JSON lines
 * (docs/history-format.md), and the mutant check. Prints the report and exits 1 on a violation, a
 * checker budget overrun, a stuck run, or a surviving killable mutant.
 */
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { mutantNames, type MutantName } from '../src/config/mutants.js';
import { checkMutants, killableMutants } from './sim/mutant-check.js';
import { formatMutants, formatTier, tierFigures } from './sim/report.js';
import type { ScenarioSizes } from './sim/scenario.js';
import { runSuite } from './sim/suite.js';
import { clusterModes, type ClusterMode } from '../src/config/options.js';

const longTierSizes: ScenarioSizes = {
  clientsMin: 3,
  clientsMax: 8,
  opsPerClientMin: 80,
  opsPerClientMax: 250,
  faultsMax: 6,
};

function positiveInt(name: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new InvalidArgumentError(`${name} must be a non-negative integer, got "${text}"`);
    }
    return n;
  };
}

function mutantName(text: string): MutantName {
  if (!(mutantNames as readonly string[]).includes(text)) {
    throw new InvalidArgumentError(`unknown mutant "${text}"; one of: ${mutantNames.join(', ')}`);
  }
  return text as MutantName;
}

interface Flags {
  runs: number;
  seed: number;
  export?: string;
  mutants: boolean;
  mutant?: MutantName;
  shrink: boolean;
  budgetMs: number;
  fast: boolean;
  mode: ClusterMode;
}

function engineMode(text: string): ClusterMode {
  const mode = clusterModes.find((m) => m === text);
  if (mode === undefined) {
    throw new InvalidArgumentError(`unknown mode "${text}"; one of: ${clusterModes.join(', ')}`);
  }
  return mode;
}

async function main(): Promise<number> {
  const program = new Command('lincheck')
    .description(
      'Run simulated scenarios against dinomo and check every history for linearizability.',
    )
    .option('--runs <n>', 'scenarios to run', positiveInt('--runs'), 200)
    .option('--seed <n>', 'seed of the scenario generator', positiveInt('--seed'), 1)
    .option('--export <dir>', 'write every checked history as JSON lines into this folder')
    .option('--mutants', 'also check that every mutant is killed within 100 scenarios', false)
    .option(
      '--mutant <name>',
      `run the scenarios with one mutant on (${mutantNames.join(', ')})`,
      mutantName,
    )
    .option(
      '--shrink',
      'shrink a failing scenario and save it under property-tests/regressions/',
      false,
    )
    .option(
      '--budget-ms <n>',
      'checker time budget per key (running out is a failure)',
      positiveInt('--budget-ms'),
      10_000,
    )
    .option('--fast', 'use the fast tier scenario sizes (as in npm test)', false)
    .option(
      '--mode <mode>',
      `engine mode under test (${clusterModes.join(', ')}; docs/baselines.md)`,
      engineMode,
      'dinomo',
    )
    .parse();
  const flags = program.opts<Flags>();
  const summary = await runSuite({
    runs: flags.runs,
    seed: flags.seed,
    budgetMsPerKey: flags.budgetMs,
    shrink: flags.shrink,
    mode: flags.mode,
    regressionsDir: 'property-tests/regressions',
    ...(flags.fast ? {} : { sizes: longTierSizes }),
    ...(flags.mutant === undefined ? {} : { mutants: { [flags.mutant]: true } }),
    ...(flags.export === undefined ? {} : { exportDir: flags.export }),
    onRun: (r, i) => {
      if (i % 25 === 0 || !r.ok) process.stderr.write(`  ${i}/${flags.runs} scenarios\n`);
    },
  });
  const title =
    `lincheck --runs ${flags.runs} --seed ${flags.seed}` +
    (flags.mode === 'dinomo' ? '' : ` --mode ${flags.mode}`) +
    (flags.mutant === undefined ? '' : ` --mutant ${flags.mutant}`);
  console.log(formatTier(title, tierFigures(summary)));
  if (flags.export !== undefined)
    console.log(`  histories written to    ${join(flags.export, 'history-*.jsonl')}`);
  let failed = false;
  if (summary.failure !== null) {
    failed = true;
    console.log(`\nFAILED at scenario ${summary.firstFailureAt}: ${summary.failure.failure?.kind}`);
    console.log(summary.failure.failure?.message);
    if (summary.savedAs !== null) console.log(`shrunk scenario saved as ${summary.savedAs}`);
  }
  if (flags.mutants) {
    const outcomes = await checkMutants(killableMutants, flags.seed, 100);
    console.log('\n' + formatMutants(outcomes));
    if (outcomes.some((o) => o.killedAt === null)) failed = true;
  }
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(2);
  },
);
