/**
 * The KN side of the fabric micro-benchmark, run as its own process by fabric-bench.ts: it reads a
 * grant as one JSON line on stdin, then for each operation kind times single TypeScript calls
 * through NativeFabric and a C loop through the same endpoint, and prints the results as one JSON
 * line.
 */
import { createInterface } from 'node:readline';
import { NativeFabric, grantFromJson } from '../fabric/index.js';
import { fabricOps, type FabricBenchJob, type FabricOpResult } from './fabric-bench-types.js';

function medianNs(samples: Float64Array): number {
  samples.sort();
  return samples[samples.length >> 1] ?? 0;
}

function p99Ns(samples: Float64Array): number {
  return samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))] ?? 0;
}

function measure(fabric: NativeFabric, job: FabricBenchJob): FabricOpResult[] {
  const results: FabricOpResult[] = [];
  const buffer = new Uint8Array(4096).fill(7);
  const samples = new Float64Array(job.ops);
  for (const spec of fabricOps) {
    const run = (): void => {
      switch (spec.kind) {
        case 'read':
          fabric.read(spec.offset, spec.bytes, buffer);
          return;
        case 'write':
          fabric.write(spec.offset, buffer, 0, spec.bytes);
          return;
        case 'cas':
          fabric.cas64(spec.offset, 0n, 1n);
          return;
        case 'faa':
          fabric.faa64(spec.offset, 1n);
      }
    };
    for (let i = 0; i < job.warmup; i++) run();
    const loopStart = process.hrtime.bigint();
    for (let i = 0; i < job.ops; i++) {
      const start = process.hrtime.bigint();
      run();
      samples[i] = Number(process.hrtime.bigint() - start);
    }
    const loopNs = Number(process.hrtime.bigint() - loopStart);
    fabric.nativeLoop(spec.kind, spec.offset, spec.bytes, job.warmup);
    const nativeNs = fabric.nativeLoop(spec.kind, spec.offset, spec.bytes, job.ops);
    results.push({
      op: spec.name,
      tsMedianUs: medianNs(samples) / 1000,
      tsP99Us: p99Ns(samples) / 1000,
      tsOpsPerSec: (job.ops * 1e9) / loopNs,
      nativeMeanUs: nativeNs / job.ops / 1000,
      nativeOpsPerSec: (job.ops * 1e9) / nativeNs,
    });
  }
  return results;
}

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done === true) throw new Error('fabric-bench-client: no job on stdin');
  const job = JSON.parse(first.value) as FabricBenchJob;
  const grant = grantFromJson(job.grant);
  const fabric = new NativeFabric({
    grant,
    regrant: () => grant,
    timeoutMs: 5000,
    bounceBytes: 1 << 16,
  });
  const results = measure(fabric, job);
  fabric.close();
  process.stdout.write(`${JSON.stringify(results)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  console.error('fabric-bench-client failed:', err);
  process.exit(1);
});
