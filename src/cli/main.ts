#!/usr/bin/env node
/**
 * The `dinomo` command. Everything testable lives in program.ts; this file only wires the process:
 * its streams, the Cluster class, and the exit code.
 */
import type { BenchClusterClass, ElasticCluster, ElasticClusterClass } from '../bench/index.js';
import { DinomoError } from '../errors/index.js';
import { createProgressBar } from './progress.js';
import { exitCodes, runCli } from './program.js';

/**
 * The public API is imported only when a command needs a cluster, by a computed path: `--help` then
 * loads no cluster code, and this file compiles before and independently of src/index.ts.
 */
async function loadCluster(): Promise<BenchClusterClass> {
  const modulePath = new URL('../index.js', import.meta.url).href;
  const loaded = (await import(modulePath)) as { Cluster?: unknown };
  if (!isClusterClass(loaded.Cluster)) {
    throw new Error(`${modulePath} does not export a Cluster class with a static start()`);
  }
  return loaded.Cluster;
}

function isClusterClass(value: unknown): value is BenchClusterClass {
  return (
    typeof value === 'function' &&
    typeof (value as unknown as Record<string, unknown>)['start'] === 'function'
  );
}

const elasticMethods = ['addKn', 'removeKn', 'failKn', 'knIds'] as const;

/** The Cluster class for `dinomo trigger`: one whose KNs can be added, removed and failed. */
async function loadElasticCluster(): Promise<ElasticClusterClass> {
  const clusterClass = await loadCluster();
  return {
    start: async (options) => {
      const cluster = await clusterClass.start(options);
      const methods = cluster as unknown as Record<string, unknown>;
      const missing = elasticMethods.filter((name) => typeof methods[name] !== 'function');
      if (missing.length > 0) {
        await cluster.stop();
        throw new DinomoError('NOT_SUPPORTED', `this build's Cluster has no ${missing.join(', ')}`);
      }
      return cluster as unknown as ElasticCluster;
    },
  };
}

/** Writes nothing, but resolves once everything written to the stream before it has been flushed. */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

let code: number;
try {
  code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    stderrIsTty: process.stderr.isTTY === true,
    loadCluster,
    loadElasticCluster,
    stdin: process.stdin,
    stdinIsTty: process.stdin.isTTY === true,
    createProgress: () => createProgressBar(process.stderr),
  });
} catch (err) {
  process.stderr.write(
    `dinomo: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  code = exitCodes.failed;
}
// Exit explicitly: a cluster that failed to stop cleanly may leave a worker or timer running, and the
// command must still end with its exit code.
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
