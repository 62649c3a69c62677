/**
 * The trigger console: the original benchmark's trigger commands (LOAD, RUN, WARM, WARM-RUN, ADD,
 * REMOVE, FAIL) run against one elastic cluster in this process. The original trigger broadcast each
 * command to benchmark threads on other machines and returned at once; here LOAD, WARM and the KN
 * commands run to completion before the next command, and RUN and WARM-RUN go to the background, so
 * that a script can change the cluster while a run measures it. The commands are parsed by
 * src/cli/trigger-commands.ts; this module only runs them.
 */
import { isDinomoError } from '../errors/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { SeededRandom, unreachable } from '../util/index.js';
import { buildReport, type BenchConfig } from './report.js';
import { loadKeys, runWorkload } from './runner.js';
import type { TimelinePoint } from './timeline.js';
import type { ElasticCluster, KnChangeReport } from './types.js';
import { Workload, type BenchOp, type OpSource, type WorkloadSpec } from './workload.js';
import { ZipfGenerator, defaultKeyPrefix, keyName } from './zipf.js';

/** Where a command came from: its line (1-based) and its text, for messages. */
interface CommandSource {
  line: number;
  text: string;
}

/** `LOAD:num_keys:value_len[:threads:nodes]`: puts keys 0 .. keys-1. */
export interface LoadCommand extends CommandSource {
  kind: 'load';
  keys: number;
  valueBytes: number;
  /** The original's loader threads per node and node count: accepted, and ignored with a note. */
  ignored: { threads: number; nodes: number } | null;
}

/** `RUN:read_ratio:num_keys:value_len:report_period_s:duration_s:zipf:num_outstanding[:is_update_only]`. */
export interface RunCommand extends CommandSource {
  kind: 'run';
  readRatio: number;
  keys: number;
  valueBytes: number;
  reportPeriodSec: number;
  durationSec: number;
  zipf: number;
  outstanding: number;
  /** False: each put inserts a new key after the loaded ones, like the original's P operations. */
  updateOnly: boolean;
}

/** `WARM:num_keys:value_len:num_requests:zipf`: gets `requests` keys drawn from the distribution. */
export interface WarmCommand extends CommandSource {
  kind: 'warm';
  keys: number;
  valueBytes: number;
  requests: number;
  zipf: number;
}

/** `WARM-RUN:read_ratio:value_len:report_period:duration:num_outstanding[:num_loaded_keys:is_update_only]`. */
export interface WarmRunCommand extends CommandSource {
  kind: 'warm-run';
  readRatio: number;
  valueBytes: number;
  reportPeriodSec: number;
  durationSec: number;
  outstanding: number;
  /** The first key index an insert writes; null: the key count of the last LOAD, else of the WARM. */
  loadedKeys: number | null;
  updateOnly: boolean;
}

/** `ADD:n`, `REMOVE:n`, `FAIL:n`. */
export interface KnCommand extends CommandSource {
  kind: 'add' | 'remove' | 'fail';
  count: number;
}

/** `SLEEP:seconds` (an extension). */
export interface SleepCommand extends CommandSource {
  kind: 'sleep';
  seconds: number;
}

/** `WAIT`, `STATS`, `QUIT` / `EXIT` (extensions). */
export interface PlainCommand extends CommandSource {
  kind: 'wait' | 'stats' | 'quit';
}

export type TriggerCommand =
  LoadCommand | RunCommand | WarmCommand | WarmRunCommand | KnCommand | SleepCommand | PlainCommand;

export interface TriggerIo {
  /** One line of output (the CLI prints it on stdout). */
  log(line: string): void;
  /** One line about a command that failed (the CLI prints it on stderr); default: `log`. */
  error?: (line: string) => void;
  /** The clock of runs, sleeps and timestamps; tests pass a virtual one. Default: the system clock. */
  clock?: Clock;
}

export interface TriggerOptions {
  /** Seed of the generated keys and mixes: the n-th RUN, WARM or WARM-RUN uses seed + n. */
  seed: number;
  /** Puts in flight during LOAD and gets in flight during WARM; default 64. */
  concurrency?: number;
  /** Print each command (`> RUN:...`) before its output, for a transcript of a script; default false. */
  echo?: boolean;
}

/** How a command ended: `quit` asks the caller to stop reading commands. */
export type TriggerOutcome = 'ok' | 'failed' | 'quit';

/** The key sequence a WARM drew, for WARM-RUN to replay. */
interface WarmKeys {
  keys: Uint32Array;
  keySpace: number;
}

/**
 * Runs trigger commands against one cluster. `execute` never throws for a command that fails: it
 * reports the failure and returns `failed`, and the cluster is as the command left it (a bad REMOVE or
 * FAIL is refused before anything changes). Background runs report through `io` as they go.
 */
export class TriggerSession {
  private readonly clock: Clock;
  private readonly startUs: number;
  private readonly runs = new Set<Promise<void>>();
  private generated = 0;
  private runCount = 0;
  private loadedKeys: number | null = null;
  private warm: WarmKeys | null = null;
  private failureCount = 0;

  constructor(
    private readonly target: ElasticCluster,
    private readonly io: TriggerIo,
    private readonly options: TriggerOptions,
  ) {
    this.clock = io.clock ?? systemClock;
    this.startUs = this.clock.nowUs();
  }

  /** Commands and background runs that failed so far. */
  get failures(): number {
    return this.failureCount;
  }

  /** Background runs still going. */
  get activeRuns(): number {
    return this.runs.size;
  }

  async execute(command: TriggerCommand): Promise<TriggerOutcome> {
    if (this.options.echo === true) this.log(`> ${command.text}`);
    try {
      return await this.dispatch(command);
    } catch (err) {
      this.fail(`${command.text} failed: ${messageOf(err)}`);
      return 'failed';
    }
  }

  /** Resolves once every background run has ended (its summary or failure is printed by then). */
  async waitForRuns(): Promise<void> {
    while (this.runs.size > 0) await Promise.all([...this.runs]);
  }

  private async dispatch(command: TriggerCommand): Promise<TriggerOutcome> {
    switch (command.kind) {
      case 'load':
        await this.load(command);
        return 'ok';
      case 'run': {
        const seed = this.nextSeed();
        this.startRun(command, this.runOps(command, seed), seed);
        return 'ok';
      }
      case 'warm':
        await this.warmUp(command);
        return 'ok';
      case 'warm-run':
        return this.warmRun(command);
      case 'add':
        await this.addKns(command);
        return 'ok';
      case 'remove':
      case 'fail':
        return this.dropKns(command);
      case 'sleep':
        await new Promise<void>((resolve) => this.clock.setTimer(command.seconds * 1e6, resolve));
        return 'ok';
      case 'wait': {
        const waiting = this.runs.size;
        await this.waitForRuns();
        this.log(`WAIT: ${plural(waiting, 'background run')} finished`);
        return 'ok';
      }
      case 'stats':
        await this.printStats();
        return 'ok';
      case 'quit':
        return 'quit';
      default:
        return unreachable(command, 'trigger command');
    }
  }

  private async load(command: LoadCommand): Promise<void> {
    const concurrency = this.options.concurrency ?? 64;
    if (command.ignored !== null) {
      this.log(
        `LOAD: note: threads (${command.ignored.threads}) and nodes (${command.ignored.nodes}) are ` +
          `ignored; one client loads with ${concurrency} puts in flight`,
      );
    }
    const result = await loadKeys(this.target.client(), command.keys, command.valueBytes, {
      concurrency,
      clock: this.clock,
    });
    this.loadedKeys = command.keys;
    const seconds = result.elapsedUs / 1e6;
    this.log(
      `LOAD: ${int(command.keys)} keys of ${int(command.valueBytes)} bytes in ${seconds.toFixed(1)} s ` +
        `(${int(rate(command.keys, result.elapsedUs))} puts/s` +
        (result.retries > 0 ? `, ${int(result.retries)} retries)` : ')'),
    );
  }

  /** RUN's operations: the Workload itself, or with puts turned into inserts of new keys. */
  private runOps(command: RunCommand, seed: number): OpSource {
    const { readRatio, keys, zipf, valueBytes } = command;
    const mix = new Workload(triggerSpec('RUN', readRatio, keys, zipf, valueBytes, seed));
    return command.updateOnly ? mix : new TriggerOps(mix, null, command.keys);
  }

  private warmRun(command: WarmRunCommand): TriggerOutcome {
    if (this.warm === null) {
      this.fail(`${command.text}: WARM-RUN replays the keys of a WARM, and no WARM has run yet`);
      return 'failed';
    }
    // The mix comes from a Workload over a single key; the keys come from the WARM sequence.
    const seed = this.nextSeed();
    const mix = new Workload(
      triggerSpec('WARM-RUN', command.readRatio, 1, 0, command.valueBytes, seed),
    );
    const firstInsert = command.updateOnly
      ? null
      : (command.loadedKeys ?? this.loadedKeys ?? this.warm.keySpace);
    this.startRun(command, new TriggerOps(mix, this.warm.keys, firstInsert), seed);
    return 'ok';
  }

  /** Starts a run in the background; its report lines and summary are printed as they come. */
  private startRun(command: RunCommand | WarmRunCommand, ops: OpSource, seed: number): void {
    const tag = `[run ${++this.runCount}]`;
    const { durationSec, reportPeriodSec } = command;
    const keys = command.kind === 'run' ? command.keys : (this.warm?.keySpace ?? 0);
    const keysText =
      command.kind === 'run'
        ? `${int(keys)} keys, zipf ${command.zipf}`
        : `replaying WARM's ${int(this.warm?.keys.length ?? 0)} keys`;
    this.log(
      `${tag} ${command.text}: ${percent(command.readRatio, 0)} get, ${keysText}, ` +
        `${int(command.valueBytes)}-byte values, ${command.outstanding} in flight, ${durationSec} s` +
        `${command.updateOnly ? '' : ', puts insert new keys'}, seed ${seed}`,
    );
    const config: BenchConfig = {
      workload: command.kind === 'run' ? 'RUN' : 'WARM-RUN',
      readFraction: command.readRatio,
      keys,
      zipf: command.kind === 'run' ? command.zipf : 0,
      scramble: false,
      valueBytes: command.valueBytes,
      concurrency: command.outstanding,
      durationSec,
      seed,
      kns: null,
      threadsPerKn: null,
      cacheBytesPerThread: null,
      regionBytes: null,
    };
    // Tenths of a second, unless the period is finer than that.
    const digits = Number.isInteger(reportPeriodSec * 10) ? 1 : 3;
    const onPeriod = (point: TimelinePoint): void => {
      const atSec = Math.min(point.second + reportPeriodSec, durationSec);
      this.log(
        `${tag} ${atSec.toFixed(digits)} s: ${int(point.opsPerSec)} ops/s, p50 ${int(point.p50Us)} µs, ` +
          `p99 ${int(point.p99Us)} µs, ${plural(point.errors, 'error')}`,
      );
    };
    const run = runWorkload(this.target, {
      durationMs: durationSec * 1000,
      workload: ops,
      concurrency: command.outstanding,
      clock: this.clock,
      reportPeriodMs: reportPeriodSec * 1000,
      onPeriod,
    }).then(
      (result) => {
        const report = buildReport(result, config);
        const { p50, p99, p999 } = report.latencyUs;
        this.log(
          `${tag} done: ${int(report.ops.total)} ops in ${report.durationSec.toFixed(1)} s, ` +
            `${int(report.opsPerSec)} ops/s, p50 ${int(p50)} µs, p99 ${int(p99)} µs, ` +
            `p99.9 ${int(p999)} µs, errors ${errorList(report.errors)}`,
        );
        const hits = report.hitRatio;
        this.log(
          `${tag} ${report.rtsPerOp.toFixed(2)} RTs/op; gets served: value ${percent(hits.value)}, ` +
            `shortcut ${percent(hits.shortcut)}, log ${percent(hits.log)}, miss ${percent(hits.miss)}`,
        );
      },
      (err: unknown) => this.fail(`${tag} ${command.text} failed: ${messageOf(err)}`),
    );
    const tracked = run.finally(() => this.runs.delete(tracked));
    this.runs.add(tracked);
  }

  private async warmUp(command: WarmCommand): Promise<void> {
    const zipf = new ZipfGenerator({
      keys: command.keys,
      exponent: command.zipf,
      random: new SeededRandom(this.nextSeed()),
    });
    const keys = new Uint32Array(command.requests);
    for (let i = 0; i < keys.length; i++) keys[i] = zipf.next();
    const client = this.target.client();
    const startUs = this.clock.nowUs();
    const errors: Record<string, number> = {};
    let next = 0;
    let notFound = 0;
    const worker = async (): Promise<void> => {
      while (next < keys.length) {
        const key = keyName(keys[next++] ?? 0, defaultKeyPrefix);
        try {
          if ((await client.get(key)) === null) notFound++;
        } catch (err) {
          const code = isDinomoError(err) ? err.code : 'INTERNAL';
          errors[code] = (errors[code] ?? 0) + 1;
        }
      }
    };
    const concurrency = Math.min(this.options.concurrency ?? 64, keys.length);
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedUs = this.clock.nowUs() - startUs;
    this.warm = { keys, keySpace: command.keys };
    this.log(
      `WARM: ${int(keys.length)} gets of ${int(new Set(keys).size)} distinct keys ` +
        `(zipf ${command.zipf} over ${int(command.keys)}) in ${(elapsedUs / 1e6).toFixed(1)} s ` +
        `(${int(rate(keys.length, elapsedUs))} gets/s); ${int(notFound)} not found, errors ${errorList(errors)}`,
    );
  }

  private async addKns(command: KnCommand): Promise<void> {
    for (let i = 0; i < command.count; i++) {
      let report: KnChangeReport;
      try {
        report = await this.target.addKn();
      } catch (err) {
        throw new Error(`${i} of ${command.count} KNs added: ${messageOf(err)}`, { cause: err });
      }
      this.log(`ADD: KN ${report.knId} added, ${changeText(report)}; ${this.liveText()}`);
    }
  }

  /** REMOVE takes the newest KNs, FAIL the oldest (the original failed the first memory pods). */
  private async dropKns(command: KnCommand): Promise<TriggerOutcome> {
    const live = this.liveKns();
    const verb = command.kind === 'remove' ? 'remove' : 'fail';
    if (command.count >= live.length) {
      this.fail(
        `${command.text}: cannot ${verb} ${plural(command.count, 'KN')} of ${live.length} live ` +
          `(${live.join(', ')}): at least one KN must stay; nothing was changed`,
      );
      return 'failed';
    }
    const chosen =
      command.kind === 'remove'
        ? live.slice(-command.count).reverse()
        : live.slice(0, command.count);
    const name = command.kind === 'remove' ? 'REMOVE' : 'FAIL';
    for (const [done, knId] of chosen.entries()) {
      let report: KnChangeReport;
      try {
        report =
          command.kind === 'remove'
            ? await this.target.removeKn(knId)
            : await this.target.failKn(knId);
      } catch (err) {
        throw new Error(`KN ${knId} (${done} of ${command.count} done): ${messageOf(err)}`, {
          cause: err,
        });
      }
      const past = command.kind === 'remove' ? 'removed' : 'failed';
      this.log(`${name}: KN ${report.knId} ${past}, ${changeText(report)}; ${this.liveText()}`);
    }
    return 'ok';
  }

  private async printStats(): Promise<void> {
    const stats = await this.target.stats();
    const { ops, hits } = stats;
    const gets = Math.max(1, ops.gets);
    let live: string;
    try {
      live = this.liveText();
    } catch (err) {
      live = `live KNs unknown (${messageOf(err)})`;
    }
    this.log(`STATS: ${live}`);
    this.log(
      `STATS: ${int(ops.total)} ops (${int(ops.gets)} gets, ${int(ops.puts)} puts, ` +
        `${int(ops.deletes)} deletes), ${stats.rts.perOp.toFixed(2)} RTs/op, ` +
        `${stats.missCostRts.toFixed(2)} RTs/miss`,
    );
    this.log(
      `STATS: gets served: value ${percent(hits.value / gets)}, shortcut ${percent(hits.shortcut / gets)}, ` +
        `log ${percent(hits.log / gets)}, miss ${percent(hits.miss / gets)}, ${int(hits.notFound)} not found`,
    );
    this.log(
      `STATS: DPM ${int(stats.dpm.bytesUsed)} bytes used, cache ${int(stats.cache.bytesUsed)} bytes used`,
    );
  }

  private liveKns(): number[] {
    return [...this.target.knIds()].sort((a, b) => a - b);
  }

  private liveText(): string {
    const live = this.liveKns();
    return `${plural(live.length, 'KN')} live (${live.join(', ')})`;
  }

  private nextSeed(): number {
    return (this.options.seed + this.generated++) >>> 0;
  }

  private log(line: string): void {
    this.io.log(`${this.stamp()} ${line}`);
  }

  private fail(line: string): void {
    this.failureCount++;
    (this.io.error ?? this.io.log)(`${this.stamp()} ${line}`);
  }

  /** Seconds since the session started, so that output lines can be lined up with each other. */
  private stamp(): string {
    return `[${((this.clock.nowUs() - this.startUs) / 1e6).toFixed(1).padStart(6)} s]`;
  }
}

/**
 * The operations of a RUN whose puts insert and of a WARM-RUN: the get/put mix of a Workload, keys from
 * that workload or replayed cyclically from a WARM sequence, and, when `firstInsert` is set, puts that
 * write new keys firstInsert, firstInsert+1, ... (the original's P operations), each once.
 */
class TriggerOps implements OpSource {
  private readonly op: BenchOp = { kind: 'get', keyIndex: 0, key: '', version: 0 };
  private cursor = 0;
  private inserted = 0;

  constructor(
    private readonly mix: Workload,
    private readonly replay: Uint32Array | null,
    private readonly firstInsert: number | null,
  ) {}

  nextOp(): Readonly<BenchOp> {
    const drawn = this.mix.nextOp();
    const op = this.op;
    op.kind = drawn.kind;
    op.version = drawn.version;
    if (drawn.kind === 'put' && this.firstInsert !== null) {
      op.keyIndex = this.firstInsert + this.inserted++;
    } else if (this.replay !== null && this.replay.length > 0) {
      op.keyIndex = this.replay[this.cursor] ?? 0;
      this.cursor = (this.cursor + 1) % this.replay.length;
    } else {
      op.keyIndex = drawn.keyIndex;
    }
    op.key = this.mix.key(op.keyIndex);
    return op;
  }

  valueFor(op: Readonly<BenchOp>): Uint8Array {
    return this.mix.valueFor(op);
  }
}

function triggerSpec(
  name: string,
  readFraction: number,
  keys: number,
  zipfExponent: number,
  valueBytes: number,
  seed: number,
): WorkloadSpec {
  return {
    name,
    readFraction,
    keys,
    zipfExponent,
    valueBytes,
    seed,
    scramble: false,
    keyPrefix: defaultKeyPrefix,
  };
}

function changeText(report: KnChangeReport): string {
  return `${plural(report.slotsMoved, 'slot')} moved in ${report.durationMs.toFixed(1)} ms`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function rate(count: number, elapsedUs: number): number {
  return elapsedUs > 0 ? (count * 1e6) / elapsedUs : 0;
}

function errorList(errors: Record<string, number>): string {
  const entries = Object.entries(errors);
  return entries.length === 0 ? 'none' : entries.map(([code, n]) => `${code} ${int(n)}`).join(', ');
}

function plural(count: number, noun: string): string {
  return `${int(count)} ${noun}${count === 1 ? '' : 's'}`;
}

function int(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function percent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}
