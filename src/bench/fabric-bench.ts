import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DinomoError } from '../errors/index.js';
import { FabricHost, grantToJson } from '../fabric/index.js';
import type { FabricBenchJob, FabricOpResult } from './fabric-bench-types.js';

export type { FabricOpResult } from './fabric-bench-types.js';

export interface FabricBenchOptions {
  providers: readonly ('shm' | 'tcp')[];
  /** Timed operations per kind (also the length of the C loop). */
  ops: number;
  warmup: number;
  /** false: the DPM progress thread spins without yielding (lowest latency, burns a core). */
  yieldProgress: boolean;
}

export interface FabricBenchResult {
  provider: 'shm' | 'tcp';
  ops: FabricOpResult[];
}

const regionBytes = 1 << 20;
// The client runs compiled: dist/bench is two folders below the package root, as src/bench is, so the
// same path works from both (tests run this module from src).
const clientScript = fileURLToPath(
  new URL('../../dist/bench/fabric-bench-client.js', import.meta.url),
);

/**
 * The fabric micro-benchmark: a DPM-side FabricHost in this process and, per provider, a KN-side
 * endpoint in a child process (as in a cluster), which measures single TypeScript calls and a C
 * loop through the same endpoint, one after the other in the same run.
 */
export async function runFabricBench(options: FabricBenchOptions): Promise<FabricBenchResult[]> {
  if (!Number.isInteger(options.ops) || options.ops < 100 || options.ops > 1_000_000) {
    throw new DinomoError('INVALID_OPTION', '--ops must be an integer from 100 to 1000000');
  }
  const results: FabricBenchResult[] = [];
  for (const provider of options.providers) {
    const host = new FabricHost(new SharedArrayBuffer(regionBytes), {
      provider,
      rankCount: 1,
      yieldProgress: options.yieldProgress,
    });
    try {
      const job: FabricBenchJob = {
        grant: grantToJson(host.grant(0, 0)),
        ops: options.ops,
        warmup: options.warmup,
      };
      results.push({ provider, ops: await runClient(job) });
    } finally {
      host.close();
    }
  }
  return results;
}

function runClient(job: FabricBenchJob): Promise<FabricOpResult[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [clientScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) {
        resolve(JSON.parse(out) as FabricOpResult[]);
      } else {
        reject(new DinomoError('INTERNAL', `the fabric benchmark client failed: ${err.trim()}`));
      }
    });
    child.stdin.end(`${JSON.stringify(job)}\n`);
  });
}

/** The results as a Markdown table. */
export function formatFabricBench(results: readonly FabricBenchResult[]): string {
  const lines = [
    '| provider | op | TS median µs | TS p99 µs | TS ops/s | C loop mean µs | C loop ops/s |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    for (const op of r.ops) {
      lines.push(
        `| ${r.provider} | ${op.op} | ${op.tsMedianUs.toFixed(2)} | ${op.tsP99Us.toFixed(2)} | ` +
          `${kilo(op.tsOpsPerSec)} | ${op.nativeMeanUs.toFixed(2)} | ${kilo(op.nativeOpsPerSec)} |`,
      );
    }
  }
  return lines.join('\n');
}

function kilo(opsPerSec: number): string {
  return `${Math.round(opsPerSec / 1000)}k`;
}
