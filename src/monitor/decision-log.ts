import { DinomoError } from '../errors/index.js';
import type { DecisionRecord } from './policy.js';

export interface DecisionLogOptions {
  /** Records kept; the oldest is evicted when a new one arrives at capacity. Default 1000. */
  capacity?: number;
}

/**
 * The M-node's recent decisions, in memory. The policy decides every 10 s by default, so 1000
 * records cover close to three hours: enough to explain what the cluster did during a run, and a
 * hard bound on memory for an M-node that runs for months. Evictions are counted so that a reader
 * knows the log is not the whole history. Records are stored as given and must not be mutated.
 */
export class DecisionLog {
  readonly capacity: number;
  readonly #ring: Array<DecisionRecord | undefined>;
  /** Index of the oldest record. */
  #head = 0;
  #size = 0;
  #evicted = 0;

  constructor(options: DecisionLogOptions = {}) {
    const capacity = options.capacity ?? 1000;
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 10_000_000) {
      throw new DinomoError(
        'INVALID_OPTION',
        `decision log options.capacity must be an integer from 1 to 10000000, got ${String(capacity)}`,
      );
    }
    this.capacity = capacity;
    this.#ring = new Array<DecisionRecord | undefined>(capacity).fill(undefined);
  }

  /** Records held now. */
  get size(): number {
    return this.#size;
  }

  /** Records dropped to make room since the log was created. */
  get evicted(): number {
    return this.#evicted;
  }

  append(record: DecisionRecord): void {
    if (this.#size < this.capacity) {
      this.#ring[(this.#head + this.#size) % this.capacity] = record;
      this.#size++;
      return;
    }
    this.#ring[this.#head] = record;
    this.#head = (this.#head + 1) % this.capacity;
    this.#evicted++;
  }

  /** The records held, oldest first. */
  entries(): DecisionRecord[] {
    const out: DecisionRecord[] = [];
    for (let i = 0; i < this.#size; i++) {
      const record = this.#ring[(this.#head + i) % this.capacity];
      if (record !== undefined) out.push(record);
    }
    return out;
  }

  /** The records as JSON Lines: one JSON object per line, oldest first, each line ending in '\n'. */
  toJsonLines(): string {
    return this.entries()
      .map((record) => `${JSON.stringify(record)}\n`)
      .join('');
  }
}

/**
 * Reads records written by `toJsonLines` (blank lines are skipped). A line that is not a decision
 * record throws INVALID_OPTION naming the line.
 */
export function parseDecisionJsonLines(text: string): DecisionRecord[] {
  const out: DecisionRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new DinomoError('INVALID_OPTION', `decision log line ${i + 1} is not JSON`);
    }
    if (!isDecisionRecord(value)) {
      throw new DinomoError(
        'INVALID_OPTION',
        `decision log line ${i + 1} is not a decision record`,
      );
    }
    out.push(value);
  }
  return out;
}

function isDecisionRecord(value: unknown): value is DecisionRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r['atMs'] === 'number' &&
    (r['action'] === 'add' || r['action'] === 'remove' || r['action'] === 'none') &&
    (r['knId'] === undefined || typeof r['knId'] === 'number') &&
    typeof r['reason'] === 'string' &&
    typeof r['inputs'] === 'object' &&
    r['inputs'] !== null
  );
}

/**
 * One line for a human, for example
 * `t=120000ms add KN: p99 21000us > SLO 16000us, min occupancy 0.42 (KN 1) > 0.20`.
 */
export function formatLine(record: DecisionRecord): string {
  const what =
    record.action === 'add'
      ? 'add KN'
      : record.action === 'remove'
        ? `remove KN ${record.knId ?? '?'}`
        : 'none';
  return `t=${record.atMs}ms ${what}: ${record.reason}`;
}
