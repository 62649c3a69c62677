import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Mutants } from '../../src/config/mutants.js';
import { toJsonLines } from '../checker/index.js';
import { runScenario, type RunResult } from './run-scenario.js';
import { fastTierSizes, scenarioArb, type Scenario, type ScenarioSizes } from './scenario.js';
import type { ClusterMode } from '../../src/config/options.js';

export interface SuiteOptions {
  runs: number;
  seed: number;
  sizes?: ScenarioSizes;
  mutants?: Mutants;
  /** Engine mode under test; default 'dinomo'. */
  mode?: ClusterMode;
  budgetMsPerKey?: number;
  /** Shrink a failing scenario (slower); otherwise stop at the first failure. */
  shrink?: boolean;
  /** Write every checked history (main runs, not shrink attempts) as JSON lines here. */
  exportDir?: string;
  /** Save the (shrunk) failing scenario here as JSON, to be replayed by the regression test. */
  regressionsDir?: string;
  /** Called after each main run (for progress output). */
  onRun?: (result: RunResult, index: number) => void;
}

/** Everything a suite run measured; report.ts prints it. */
export interface SuiteSummary {
  mutants: Mutants;
  runs: RunResult[];
  /** 1-based index of the first failing scenario, or null. */
  firstFailureAt: number | null;
  failure: RunResult | null;
  /** The shrunk failing scenario, when shrinking ran. */
  shrunk: Scenario | null;
  savedAs: string | null;
  wallMs: number;
}

/**
 * Generates `runs` scenarios from `seed` with fast-check, runs each in the simulator and checks its
 * history. fast-check shrinks a failure (when asked) by rerunning smaller scenarios, which works
 * because a scenario always produces the same run.
 */
export async function runSuite(options: SuiteOptions): Promise<SuiteSummary> {
  const started = performance.now();
  const runs: RunResult[] = [];
  const mutants = options.mutants ?? {};
  let firstFailureAt: number | null = null;
  let failure: RunResult | null = null;
  if (options.exportDir !== undefined) mkdirSync(options.exportDir, { recursive: true });
  const property = fc.asyncProperty(scenarioArb(options.sizes ?? fastTierSizes), async (s) => {
    const result = await runScenario(s, {
      mutants,
      ...(options.mode === undefined ? {} : { mode: options.mode }),
      ...(options.budgetMsPerKey === undefined ? {} : { budgetMsPerKey: options.budgetMsPerKey }),
    });
    if (firstFailureAt === null) {
      runs.push(result);
      options.onRun?.(result, runs.length);
      if (options.exportDir !== undefined) {
        const name = `history-${String(runs.length).padStart(4, '0')}.jsonl`;
        writeFileSync(join(options.exportDir, name), toJsonLines(result.ops));
      }
      if (!result.ok) {
        firstFailureAt = runs.length;
        failure = result;
      }
    } else if (!result.ok) {
      failure = result;
    }
    return result.ok;
  });
  const details = await fc.check(property, {
    seed: options.seed,
    numRuns: options.runs,
    endOnFailure: options.shrink !== true,
  });
  const shrunk =
    details.failed && details.counterexample !== null ? details.counterexample[0] : null;
  let savedAs: string | null = null;
  // Only a shrunk scenario is worth keeping (the --shrink flag); a raw failure is reported, not saved.
  if (
    shrunk !== null &&
    options.shrink === true &&
    options.regressionsDir !== undefined &&
    failure !== null
  ) {
    savedAs = saveRegression(
      options.regressionsDir,
      shrunk,
      mutants,
      failure,
      options.seed,
      options.mode,
    );
  }
  return {
    mutants,
    runs,
    firstFailureAt,
    failure,
    shrunk,
    savedAs,
    wallMs: performance.now() - started,
  };
}

/** A stored failing scenario: what to replay and what was wrong when it was found. */
export interface Regression {
  scenario: Scenario;
  mutants: Mutants;
  /** The engine mode it was found in; absent for DINOMO mode (files saved before modes existed). */
  mode?: ClusterMode;
  foundWithSeed: number;
  failure: string;
}

function saveRegression(
  dir: string,
  scenario: Scenario,
  mutants: Mutants,
  failure: RunResult,
  seed: number,
  mode: SuiteOptions['mode'],
): string {
  mkdirSync(dir, { recursive: true });
  const tag = [
    mode === undefined || mode === 'dinomo' ? '' : mode,
    Object.keys(mutants).join('-') || 'system',
  ]
    .filter((part) => part !== '')
    .join('-');
  const file = join(dir, `${tag}-seed${seed}-${scenario.seed}.json`);
  const regression: Regression = {
    scenario,
    mutants,
    ...(mode === undefined || mode === 'dinomo' ? {} : { mode }),
    foundWithSeed: seed,
    failure: (failure.failure?.message ?? '').split('\n').slice(0, 12).join('\n'),
  };
  writeFileSync(file, JSON.stringify(regression, null, 1) + '\n');
  return file;
}
