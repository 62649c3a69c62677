import type { OpKind, OpStatus, Operation } from './history.js';
import { validateOperations } from './validate-history.js';

/**
 * The JSON-lines export format (docs/history-format.md): one invocation or completion event per
 * line, Jepsen style, sorted by time.
 */
export type EventType = 'invoke' | OpStatus;

export interface HistoryEvent {
  process: number;
  type: EventType;
  f: OpKind;
  key: string;
  /**
   * put (invoke and completion): the value written. get ok: the value read (null = absent). Every
   * other event: null.
   */
  value: string | null;
  /** Monotonic nanoseconds, an integer. */
  time: number;
  /** Present exactly on a delete `ok` event: whether the key existed. */
  existed?: boolean;
}

/**
 * Splits operations into events sorted by time. At equal times invocations come before
 * completions, except that one process's events always stay in program order: when a process's
 * op ends at the same nanosecond its next op starts, the completion must come first, or a reader
 * could not pair it with the right invocation.
 */
export function toEvents(ops: readonly Operation[]): HistoryEvent[] {
  validateOperations(ops);
  for (const op of ops) {
    if (!Number.isSafeInteger(op.call) || !Number.isSafeInteger(op.ret)) {
      throw new RangeError(
        `operation #${String(op.id)}: call and ret must be integer nanoseconds for the JSON-lines format`,
      );
    }
  }

  // Order each process's ops and give every event its place in program order.
  const byProcess = new Map<number, Operation[]>();
  for (const op of ops) {
    const list = byProcess.get(op.process);
    if (list === undefined) byProcess.set(op.process, [op]);
    else list.push(op);
  }
  interface Slot {
    readonly event: HistoryEvent;
    readonly process: number;
    /** Position in the process's program order: 2 × op rank + 0 for invoke, 1 for completion. */
    readonly seq: number;
  }
  const slots: Slot[] = [];
  for (const [process, list] of byProcess) {
    // Zero-length ops sort before a longer op with the same call, so they cannot look overlapping.
    list.sort((a, b) => a.call - b.call || a.ret - b.ret || a.id - b.id);
    for (let rank = 0; rank < list.length; rank++) {
      const op = list[rank] as Operation;
      const before = rank > 0 ? (list[rank - 1] as Operation) : undefined;
      if (before !== undefined && op.call < before.ret) {
        throw new Error(
          `operations #${String(before.id)} and #${String(op.id)} of process ${String(process)} overlap; ` +
            'the format pairs each completion with its process’s open invocation',
        );
      }
      slots.push({ event: invokeEvent(op), process, seq: 2 * rank });
      slots.push({ event: completionEvent(op), process, seq: 2 * rank + 1 });
    }
  }
  slots.sort((a, b) => a.event.time - b.event.time || a.process - b.process || a.seq - b.seq);

  // Within each group of equal times, emit every invocation that is next in its process's program
  // order, then one completion per process, and repeat.
  const out: HistoryEvent[] = [];
  let start = 0;
  while (start < slots.length) {
    const time = (slots[start] as Slot).event.time;
    let end = start;
    while (end < slots.length && (slots[end] as Slot).event.time === time) end++;
    const queues: Slot[][] = [];
    for (let i = start; i < end; i++) {
      const slot = slots[i] as Slot;
      const last = queues[queues.length - 1];
      if (last !== undefined && (last[0] as Slot).process === slot.process) last.push(slot);
      else queues.push([slot]);
    }
    const heads = new Array<number>(queues.length).fill(0);
    for (let emitted = start; emitted < end;) {
      let progress = true;
      while (progress) {
        progress = false;
        for (let q = 0; q < queues.length; q++) {
          const head = (queues[q] as Slot[])[heads[q] as number];
          if (head !== undefined && head.event.type === 'invoke') {
            out.push(head.event);
            heads[q] = (heads[q] as number) + 1;
            emitted++;
            progress = true;
          }
        }
      }
      for (let q = 0; q < queues.length; q++) {
        const head = (queues[q] as Slot[])[heads[q] as number];
        if (head !== undefined && head.event.type !== 'invoke') {
          out.push(head.event);
          heads[q] = (heads[q] as number) + 1;
          emitted++;
        }
      }
    }
    start = end;
  }
  return out;
}

function invokeEvent(op: Operation): HistoryEvent {
  return {
    process: op.process,
    type: 'invoke',
    f: op.f,
    key: op.key,
    value: op.f === 'put' ? op.value : null,
    time: op.call,
  };
}

function completionEvent(op: Operation): HistoryEvent {
  const value = op.f === 'put' || (op.f === 'get' && op.status === 'ok') ? op.value : null;
  const event: HistoryEvent = {
    process: op.process,
    type: op.status,
    f: op.f,
    key: op.key,
    value,
    time: op.ret,
  };
  if (op.f === 'delete' && op.status === 'ok') event.existed = op.existed === true;
  return event;
}

/**
 * Pairs events back into operations. Ids are assigned 0, 1, 2, … in the order of the invocation
 * events. An invocation with no completion (a recorder that died) becomes an `info` op whose ret is
 * the last time in the history, as Jepsen does; the checker treats it as open either way.
 */
export function fromEvents(events: readonly HistoryEvent[]): Operation[] {
  return pairEvents(
    events.map((event, i) => ({
      event: checkEvent(event, `event ${String(i)}`),
      where: `event ${String(i)}`,
    })),
  );
}

/** One JSON object per event, one event per line, with a trailing newline. */
export function toJsonLines(ops: readonly Operation[]): string {
  const events = toEvents(ops);
  return events.length === 0 ? '' : `${events.map((e) => JSON.stringify(e)).join('\n')}\n`;
}

/** Parses the JSON-lines format. Blank lines are ignored; every error names its 1-based line. */
export function parseJsonLines(text: string): Operation[] {
  const located: Located[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    const where = `line ${String(i + 1)}`;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (error) {
      throw new SyntaxError(
        `${where}: not valid JSON (${error instanceof Error ? error.message : String(error)})`,
        { cause: error },
      );
    }
    located.push({ event: checkEvent(raw, where), where });
  }
  return pairEvents(located);
}

interface Located {
  readonly event: HistoryEvent;
  /** "line 7" or "event 6", for error messages. */
  readonly where: string;
}

const FIELDS = new Set(['process', 'type', 'f', 'key', 'value', 'time', 'existed']);

/** Validates one decoded event and returns it as a fresh, well-typed object. */
function checkEvent(raw: unknown, where: string): HistoryEvent {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TypeError(`${where}: an event must be a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  for (const field of Object.keys(o)) {
    if (!FIELDS.has(field)) throw new TypeError(`${where}: unknown field ${JSON.stringify(field)}`);
  }
  const { process, type, f, key, value, time, existed } = o;
  if (typeof process !== 'number' || !Number.isSafeInteger(process) || process < 0) {
    throw new TypeError(`${where}: "process" must be a non-negative integer`);
  }
  if (type !== 'invoke' && type !== 'ok' && type !== 'fail' && type !== 'info') {
    throw new TypeError(`${where}: "type" must be "invoke", "ok", "fail" or "info"`);
  }
  if (f !== 'get' && f !== 'put' && f !== 'delete') {
    throw new TypeError(`${where}: "f" must be "get", "put" or "delete"`);
  }
  if (typeof key !== 'string') throw new TypeError(`${where}: "key" must be a string`);
  if (typeof time !== 'number' || !Number.isSafeInteger(time)) {
    throw new TypeError(`${where}: "time" must be an integer number of nanoseconds`);
  }
  if (value !== null && typeof value !== 'string') {
    throw new TypeError(`${where}: "value" must be a string or null (and must be present)`);
  }
  const readsValue = f === 'get' && type === 'ok';
  if (f === 'put' && value === null)
    throw new TypeError(`${where}: a put event must carry the written value`);
  if (f !== 'put' && !readsValue && value !== null) {
    throw new TypeError(`${where}: "value" must be null on a ${f} ${type} event`);
  }
  const event: HistoryEvent = { process, type, f, key, value, time };
  if (f === 'delete' && type === 'ok') {
    if (typeof existed !== 'boolean') {
      throw new TypeError(`${where}: a delete ok event must carry "existed": true or false`);
    }
    event.existed = existed;
  } else if (existed !== undefined) {
    throw new TypeError(`${where}: "existed" is only allowed on a delete ok event`);
  }
  return event;
}

interface OpenInvoke {
  readonly event: HistoryEvent;
  readonly where: string;
  readonly id: number;
}

function pairEvents(located: readonly Located[]): Operation[] {
  const ops: Operation[] = [];
  const open = new Map<number, OpenInvoke>();
  const putWhere = new Map<string, string>();
  let nextId = 0;
  let lastTime = -Infinity;
  for (const { event, where } of located) {
    if (event.time < lastTime) {
      throw new RangeError(
        `${where}: time ${String(event.time)} is before the previous event's ${String(lastTime)}; ` +
          'events must be sorted by time',
      );
    }
    lastTime = event.time;
    const pending = open.get(event.process);
    if (event.type === 'invoke') {
      if (pending !== undefined) {
        throw new Error(
          `${where}: process ${String(event.process)} invokes a ${event.f} while its ${pending.event.f} ` +
            `from ${pending.where} is still open (one process runs one op at a time)`,
        );
      }
      if (event.f === 'put') {
        const valueKey = JSON.stringify([event.key, event.value]);
        const earlier = putWhere.get(valueKey);
        if (earlier !== undefined) {
          throw new Error(
            `${where}: put value ${JSON.stringify(event.value)} on key ${JSON.stringify(event.key)} was ` +
              `already written at ${earlier}; put values must be unique per key`,
          );
        }
        putWhere.set(valueKey, where);
      }
      open.set(event.process, { event, where, id: nextId++ });
      continue;
    }
    if (pending === undefined) {
      throw new Error(
        `${where}: ${event.type} event for process ${String(event.process)}, which has no open invoke`,
      );
    }
    const invoke = pending.event;
    if (
      invoke.f !== event.f ||
      invoke.key !== event.key ||
      (event.f === 'put' && invoke.value !== event.value)
    ) {
      throw new Error(
        `${where}: this ${event.f} completion on key ${JSON.stringify(event.key)} does not match the ` +
          `${invoke.f} on key ${JSON.stringify(invoke.key)} that process ${String(event.process)} ` +
          `invoked at ${pending.where}`,
      );
    }
    open.delete(event.process);
    ops.push({
      id: pending.id,
      process: event.process,
      f: event.f,
      key: event.key,
      value: event.f === 'put' ? invoke.value : event.value,
      existed: event.existed ?? null,
      call: invoke.time,
      ret: event.time,
      status: event.type,
    });
  }
  for (const { event, id } of open.values()) {
    ops.push({
      id,
      process: event.process,
      f: event.f,
      key: event.key,
      value: event.f === 'put' ? event.value : null,
      existed: null,
      call: event.time,
      ret: lastTime,
      status: 'info',
    });
  }
  return ops.sort((a, b) => a.id - b.id);
}
