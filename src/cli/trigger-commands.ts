/**
 * The syntax of `dinomo trigger`: the original trigger's commands (`trigger.cpp`), one per line,
 * fields separated by `:`, the command name in any case, plus a few extensions. Parsing is pure: a line
 * becomes a command, nothing (a blank line or a `#` comment), or a TriggerSyntaxError that names the
 * line, what was wrong and the expected syntax. Running the commands is src/bench/trigger.ts.
 */
import { maxZipfKeys, type TriggerCommand } from '../bench/index.js';
import { valueBytesMax } from '../config/index.js';

/** The syntax of each command, as printed in help and in errors. */
export const triggerSyntax = {
  LOAD: 'LOAD:num_keys:value_len[:threads:nodes]',
  RUN: 'RUN:read_ratio:num_keys:value_len:report_period_s:duration_s:zipf:num_outstanding[:is_update_only]',
  WARM: 'WARM:num_keys:value_len:num_requests:zipf',
  'WARM-RUN':
    'WARM-RUN:read_ratio:value_len:report_period:duration:num_outstanding[:num_loaded_keys:is_update_only]',
  ADD: 'ADD:n',
  REMOVE: 'REMOVE:n',
  FAIL: 'FAIL:n',
  SLEEP: 'SLEEP:seconds',
  WAIT: 'WAIT',
  STATS: 'STATS',
  QUIT: 'QUIT',
  EXIT: 'EXIT',
} as const;

export type TriggerCommandName = keyof typeof triggerSyntax;

const commandNames = Object.keys(triggerSyntax) as TriggerCommandName[];

/** A line that is not a valid command. `usage` is the expected syntax, or the list of commands. */
export class TriggerSyntaxError extends Error {
  readonly line: number;
  readonly usage: string;

  constructor(line: number, message: string, usage: string) {
    super(`line ${line}: ${message}`);
    this.name = 'TriggerSyntaxError';
    this.line = line;
    this.usage = usage;
  }
}

/** Ranges of the fields; the cluster and the workload check them again. */
const limits = {
  keys: [1, maxZipfKeys],
  valueBytes: [0, valueBytesMax],
  seconds: [0.001, 86_400],
  zipf: [0, 10],
  outstanding: [1, 100_000],
  kns: [1, 64],
  loaderThreads: [1, 100_000],
} as const satisfies Record<string, readonly [number, number]>;

/**
 * Parses one line (`line` is its 1-based number, for messages). Returns null for a blank line or a
 * comment; a `#` also starts a comment after a command. Throws TriggerSyntaxError.
 */
export function parseTriggerLine(text: string, line: number): TriggerCommand | null {
  const hash = text.indexOf('#');
  const body = (hash === -1 ? text : text.slice(0, hash)).trim();
  if (body === '') return null;
  const [head = '', ...rest] = body.split(':').map((field) => field.trim());
  const name = head.toUpperCase();
  if (!isCommandName(name)) {
    throw new TriggerSyntaxError(
      line,
      `unknown command "${head}"`,
      `one of ${commandNames.join(', ')}`,
    );
  }
  const fields = new Fields(name, rest, line, body);
  const source = { line, text: body };
  switch (name) {
    case 'LOAD': {
      fields.expectCount(2, 4);
      const keys = fields.integer(0, 'num_keys', limits.keys);
      const valueBytes = fields.integer(1, 'value_len', limits.valueBytes);
      const ignored =
        fields.count === 4
          ? {
              threads: fields.integer(2, 'threads', limits.loaderThreads),
              nodes: fields.integer(3, 'nodes', limits.loaderThreads),
            }
          : null;
      return { kind: 'load', ...source, keys, valueBytes, ignored };
    }
    case 'RUN':
      fields.expectCount(7, 8);
      return {
        kind: 'run',
        ...source,
        readRatio: fields.number(0, 'read_ratio', [0, 1]),
        keys: fields.integer(1, 'num_keys', limits.keys),
        valueBytes: fields.integer(2, 'value_len', limits.valueBytes),
        reportPeriodSec: fields.number(3, 'report_period_s', limits.seconds),
        durationSec: fields.number(4, 'duration_s', limits.seconds),
        zipf: fields.number(5, 'zipf', limits.zipf),
        outstanding: fields.integer(6, 'num_outstanding', limits.outstanding),
        updateOnly: fields.flag(7, 'is_update_only', true),
      };
    case 'WARM':
      fields.expectCount(4);
      return {
        kind: 'warm',
        ...source,
        keys: fields.integer(0, 'num_keys', limits.keys),
        valueBytes: fields.integer(1, 'value_len', limits.valueBytes),
        requests: fields.integer(2, 'num_requests', limits.keys),
        zipf: fields.number(3, 'zipf', limits.zipf),
      };
    case 'WARM-RUN':
      fields.expectCount(5, 6, 7);
      return {
        kind: 'warm-run',
        ...source,
        readRatio: fields.number(0, 'read_ratio', [0, 1]),
        valueBytes: fields.integer(1, 'value_len', limits.valueBytes),
        reportPeriodSec: fields.number(2, 'report_period', limits.seconds),
        durationSec: fields.number(3, 'duration', limits.seconds),
        outstanding: fields.integer(4, 'num_outstanding', limits.outstanding),
        loadedKeys: fields.count > 5 ? fields.integer(5, 'num_loaded_keys', [0, 2 ** 31]) : null,
        updateOnly: fields.flag(6, 'is_update_only', true),
      };
    case 'ADD':
    case 'REMOVE':
    case 'FAIL':
      fields.expectCount(1);
      return {
        kind: name === 'ADD' ? 'add' : name === 'REMOVE' ? 'remove' : 'fail',
        ...source,
        count: fields.integer(0, 'n', limits.kns),
      };
    case 'SLEEP':
      fields.expectCount(1);
      return { kind: 'sleep', ...source, seconds: fields.number(0, 'seconds', [0, 86_400]) };
    case 'WAIT':
    case 'STATS':
      fields.expectCount(0);
      return { kind: name === 'WAIT' ? 'wait' : 'stats', ...source };
    case 'QUIT':
    case 'EXIT':
      fields.expectCount(0);
      return { kind: 'quit', ...source };
  }
}

export interface ParsedTriggerScript {
  commands: TriggerCommand[];
  /** Every bad line, in order; a script with any is not run at all. */
  errors: TriggerSyntaxError[];
}

/** Parses a whole script, collecting every bad line rather than stopping at the first. */
export function parseTriggerScript(text: string): ParsedTriggerScript {
  const commands: TriggerCommand[] = [];
  const errors: TriggerSyntaxError[] = [];
  text.split(/\r?\n/).forEach((lineText, index) => {
    try {
      const command = parseTriggerLine(lineText, index + 1);
      if (command !== null) commands.push(command);
    } catch (err) {
      if (!(err instanceof TriggerSyntaxError)) throw err;
      errors.push(err);
    }
  });
  return { commands, errors };
}

function isCommandName(name: string): name is TriggerCommandName {
  return Object.hasOwn(triggerSyntax, name);
}

const decimalPattern = /^\d+(?:\.\d+)?(?:e[+-]?\d+)?$|^\.\d+$/i;

/** The fields after the command name, with checks whose errors name the command and the field. */
class Fields {
  constructor(
    private readonly name: TriggerCommandName,
    private readonly values: readonly string[],
    private readonly line: number,
    private readonly text: string,
  ) {}

  get count(): number {
    return this.values.length;
  }

  private fail(message: string): never {
    throw new TriggerSyntaxError(
      this.line,
      `${this.name} ${message} (in "${this.text}")`,
      triggerSyntax[this.name],
    );
  }

  /** Fails unless the field count is one of `allowed`. */
  expectCount(...allowed: number[]): void {
    const n = this.values.length;
    if (allowed.includes(n)) return;
    const last = allowed.at(-1) ?? 0;
    const wanted =
      allowed.length === 1 ? `${last}` : `${allowed.slice(0, -1).join(', ')} or ${last}`;
    this.fail(`takes ${wanted} field${last === 1 ? '' : 's'} after the name, got ${n}`);
  }

  private parse(index: number, field: string): number {
    const text = this.values[index] ?? '';
    if (!decimalPattern.test(text)) this.fail(`${field} must be a number (got "${text}")`);
    return Number(text);
  }

  number(index: number, field: string, [min, max]: readonly [number, number]): number {
    const value = this.parse(index, field);
    if (value < min || value > max)
      this.fail(`${field} must be from ${min} to ${max} (got "${this.values[index]}")`);
    return value;
  }

  integer(index: number, field: string, [min, max]: readonly [number, number]): number {
    const value = this.parse(index, field);
    if (!Number.isInteger(value) || value < min || value > max) {
      this.fail(`${field} must be an integer from ${min} to ${max} (got "${this.values[index]}")`);
    }
    return value;
  }

  /** A 0/1 field; absent gives the default. */
  flag(index: number, field: string, fallback: boolean): boolean {
    const text = this.values[index];
    if (text === undefined) return fallback;
    if (text !== '0' && text !== '1') this.fail(`${field} must be 0 or 1 (got "${text}")`);
    return text === '1';
  }
}
