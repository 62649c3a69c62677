#!/usr/bin/env node
/**
 * The `dinomo` command. Everything testable lives in program.ts; this file only wires the process:
 * its streams, the Cluster class, and the exit code.
 */
import type {
  BenchCluster,
  BenchClusterClass,
  ElasticCluster,
  ElasticClusterClass,
} from '../bench/index.js';
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

/**
 * The Cluster class for `dinomo trigger`. A Cluster that lacks some of the elastic methods still runs
 * LOAD, RUN and WARM; the commands that need a missing method fail with NOT_SUPPORTED.
 */
async function loadElasticCluster(): Promise<ElasticClusterClass> {
  const clusterClass = await loadCluster();
  return { start: async (options) => asElastic(await clusterClass.start(options)) };
}

function asElastic(cluster: BenchCluster): ElasticCluster {
  const methods = cluster as unknown as Record<string, unknown>;
  if (elasticMethods.every((name) => typeof methods[name] === 'function')) {
    return cluster as ElasticCluster;
  }
  const method = <K extends (typeof elasticMethods)[number]>(name: K): ElasticCluster[K] => {
    const found = methods[name];
    if (typeof found === 'function') return found.bind(cluster) as ElasticCluster[K];
    return () => {
      throw new DinomoError('NOT_SUPPORTED', `this build's Cluster has no ${name}()`);
    };
  };
  return {
    client: () => cluster.client(),
    stats: () => cluster.stats(),
    stop: () => cluster.stop(),
    addKn: method('addKn'),
    removeKn: method('removeKn'),
    failKn: method('failKn'),
    knIds: method('knIds'),
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
