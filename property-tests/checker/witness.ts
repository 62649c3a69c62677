import type { Operation } from './history.js';

/** How a violation was found. */
export type WitnessKind = 'garbage-read' | 'read-from-future' | 'stale-read' | 'no-linearization';

/** One step of a partial linearization: the op and the register state right after it. */
export interface WitnessStep {
  readonly id: number;
  /** null = the key is absent. */
  readonly state: string | null;
}

/**
 * A minimal description of why one key's sub-history is not linearizable. It is plain data so a
 * harness can print it with formatWitness or write it out as JSON.
 */
export interface Witness {
  readonly key: string;
  readonly kind: WitnessKind;
  /** One sentence naming the contradiction. */
  readonly reason: string;
  /**
   * no-linearization: the longest partial linearization the search found, in order. stale-read:
   * the writes whose real-time order rules out what the get returned. Empty otherwise.
   */
  readonly linearization: readonly WitnessStep[];
  /** The first determinate op that could not be linearized after that prefix. */
  readonly failedOp: number;
  /** For a failed get of a value, the put that wrote the value (null otherwise or if none did). */
  readonly writer: number | null;
  /** Ids of the ops whose interval overlaps failedOp's (info ops count as open forever), by call. */
  readonly window: readonly number[];
}

interface Interval {
  readonly id: number;
  readonly call: number;
  readonly ret: number;
}

/** Ops concurrent with `target` under closed intervals, ordered by invocation time. */
export function concurrentWindow(ops: readonly Interval[], target: Interval): number[] {
  return ops
    .filter((op) => op.id !== target.id && op.call <= target.ret && op.ret >= target.call)
    .sort((a, b) => a.call - b.call || a.id - b.id)
    .map((op) => op.id);
}

/** At most this many prefix steps are printed: the contradiction lives at the end of the prefix. */
const PREFIX_TAIL = 12;

/**
 * Renders a witness for a human: the tail of the longest partial linearization with the state after
 * each step, the op that could not go next, the put that wrote the value it read, and the
 * concurrent window. `ops` is the history the witness came from; only the ids are looked up.
 */
export function formatWitness(witness: Witness, ops: readonly Operation[]): string {
  const byId = new Map<number, Operation>();
  for (const op of ops) byId.set(op.id, op);
  const describe = (id: number): string => {
    const op = byId.get(id);
    return op === undefined ? `#${String(id)} (not in the given history)` : describeOperation(op);
  };

  const lines = [`key ${JSON.stringify(witness.key)}: ${witness.kind}: ${witness.reason}`];
  const steps = witness.linearization;
  if (steps.length > 0) {
    lines.push(
      witness.kind === 'no-linearization'
        ? `longest partial linearization (${String(steps.length)} ops):`
        : 'forced order (real time):',
    );
    const first = Math.max(0, steps.length - PREFIX_TAIL);
    if (first > 0) lines.push(`  ... ${String(first)} earlier ops`);
    for (let i = first; i < steps.length; i++) {
      const step = steps[i] as WitnessStep;
      lines.push(`  ${String(i + 1)}. ${describe(step.id)}  => state ${showValue(step.state)}`);
    }
  } else if (witness.kind === 'no-linearization') {
    lines.push('no op can be linearized first');
  }
  lines.push('cannot be linearized next:', `  ${describe(witness.failedOp)}`);
  if (witness.writer !== null)
    lines.push('the put that wrote the value it read:', `  ${describe(witness.writer)}`);
  lines.push(`concurrent ops (${String(witness.window.length)}):`);
  for (const id of witness.window) lines.push(`  ${describe(id)}`);
  return lines.join('\n');
}

/** For example `#7 p2 get "k" -> "v3" [100..180] ok`. */
export function describeOperation(op: Operation): string {
  let payload: string;
  switch (op.f) {
    case 'put':
      payload = showValue(op.value);
      break;
    case 'get':
      payload = op.status === 'ok' ? `-> ${showValue(op.value)}` : '-> ?';
      break;
    case 'delete':
      payload = op.existed === null ? '-> ?' : `-> existed=${String(op.existed)}`;
      break;
  }
  const status =
    op.status === 'info' ? 'info (open: may take effect any time after call)' : op.status;
  return (
    `#${String(op.id)} p${String(op.process)} ${op.f} ${JSON.stringify(op.key)} ${payload} ` +
    `[${String(op.call)}..${String(op.ret)}] ${status}`
  );
}

function showValue(value: string | null): string {
  return value === null ? 'absent' : JSON.stringify(value);
}
