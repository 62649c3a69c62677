import { assert } from '../util/assert.js';
import type { SlotMove } from '../routing/index.js';

/**
 * The M-node side of moving slots (DESIGN.md section 8), as a pure step function: the caller feeds
 * inputs (a move request, or the report that a step finished) and performs the outputs (messages to
 * KN threads, the DPM write of the new epoch). Moves run one at a time, in order:
 *
 *   release(S) to the old owner  ->  persist(epoch + 1, S -> new owner)  ->  acquire(S) to the new owner
 *
 * The old owner answers `released` once it stopped serving S and committed its staged writes, with
 * its chain's committed LSN; it does not wait for the merge. The step remembers that LSN as a merge
 * fence on S until a new owner of S reports `acquired`, and every `acquire` of S carries the fences
 * of S (`waitFor`). The new owner takes writes of S at once (they are in a newer epoch, so the merge,
 * which orders by version, keeps them over the old owner's) and serves reads and deletes of S only
 * after the DPM merged every fence's chain through its LSN; it answers `acquired` then. A fence
 * outlives a new owner that fails before that (the next owner of S gets it too), and ends when the
 * fenced rank fails over, because a failover merges the whole chain.
 *
 * A failed thread cannot release. When the caller reports `failed(r)`, the step asks for a failover
 * of r (the caller waits for r's lease to end, fences r at the DPM and has its chain merged through
 * its commit offsets) and reports `failed-over(r)`; from then on a move away from r needs no release,
 * because the failover did what the release would have. A move to a failed thread ends once it is
 * persisted (nobody acquires); the moves that take r's slots away follow it in the queue. A rank that
 * restarts with the same identity is reported `rejoined` and releases normally again.
 */
export interface ReconfigState {
  epoch: number;
  nextMoveId: number;
  queue: ReadonlyArray<{ id: number; move: SlotMove }>;
  active: { id: number; move: SlotMove; phase: 'releasing' | 'persisting' | 'acquiring' } | null;
  /** Ranks declared failed whose failover has not finished. */
  failed: readonly number[];
  /** Ranks whose failover finished (fenced, chain merged): moves away from them skip the release. */
  failedOver: readonly number[];
  /** Released slots whose old owner's log may not be merged yet (see the description above). */
  fences: readonly SlotFence[];
}

/** A merge a new owner waits for before it serves reads of the slots it acquires. */
export interface MergeFence {
  rank: number;
  lsn: number;
}

/** Slots whose reads must wait until chain `rank` is merged through `lsn`. */
export interface SlotFence extends MergeFence {
  slots: readonly number[];
}

export type ReconfigInput =
  | { type: 'move'; move: SlotMove }
  /** `lsn`: the old owner's committed LSN when it stopped serving the slots. */
  | { type: 'released'; moveId: number; lsn: number }
  | { type: 'persisted'; moveId: number }
  | { type: 'acquired'; moveId: number }
  | { type: 'failed'; rank: number }
  | { type: 'failed-over'; rank: number }
  | { type: 'rejoined'; rank: number };

export type ReconfigOutput =
  | { type: 'failover'; rank: number }
  | { type: 'release'; moveId: number; rank: number; slots: number[] }
  | { type: 'persist'; moveId: number; epoch: number; slots: number[]; owner: number }
  | {
      type: 'acquire';
      moveId: number;
      rank: number;
      slots: number[];
      epoch: number;
      waitFor: MergeFence[];
    }
  | { type: 'done'; moveId: number; epoch: number; move: SlotMove };

export function initialReconfigState(epoch: number): ReconfigState {
  return {
    epoch,
    nextMoveId: 1,
    queue: [],
    active: null,
    failed: [],
    failedOver: [],
    fences: [],
  };
}

export function reconfigStep(
  state: ReconfigState,
  input: ReconfigInput,
): { state: ReconfigState; outputs: ReconfigOutput[] } {
  const active = state.active;
  if (input.type === 'failed' || input.type === 'failed-over' || input.type === 'rejoined') {
    return membershipStep(state, input);
  }
  if (input.type === 'move') {
    const queued = { id: state.nextMoveId, move: input.move };
    return startNext({
      ...state,
      nextMoveId: state.nextMoveId + 1,
      queue: [...state.queue, queued],
    });
  }
  // A report for a move that is not the active one, or for another phase, is stale: ignore it.
  if (active === null || input.moveId !== active.id) return { state, outputs: [] };
  const { move } = active;
  if (input.type === 'released' && active.phase === 'releasing') {
    const fence: SlotFence = { rank: move.from, lsn: input.lsn, slots: move.slots };
    return persistActive({ ...state, fences: [...state.fences, fence] });
  }
  if (input.type === 'persisted' && active.phase === 'persisting') {
    const epoch = state.epoch + 1;
    if (isDown(state, move.to)) return finish({ ...state, epoch });
    const acquire: ReconfigOutput = {
      type: 'acquire',
      moveId: active.id,
      rank: move.to,
      slots: move.slots,
      epoch,
      waitFor: fencesOf(state.fences, move.slots),
    };
    return {
      state: { ...state, epoch, active: { ...active, phase: 'acquiring' } },
      outputs: [acquire],
    };
  }
  if (input.type === 'acquired' && active.phase === 'acquiring') {
    // The new owner waited for every fence of these slots: they are lifted.
    return finish({ ...state, fences: withoutSlots(state.fences, move.slots) });
  }
  return { state, outputs: [] };
}

/** The merges (one per rank, the highest LSN) that fences on `slots` ask for. */
function fencesOf(fences: readonly SlotFence[], slots: readonly number[]): MergeFence[] {
  const wanted = new Set(slots);
  const byRank = new Map<number, number>();
  for (const fence of fences) {
    if (!fence.slots.some((slot) => wanted.has(slot))) continue;
    byRank.set(fence.rank, Math.max(byRank.get(fence.rank) ?? 0, fence.lsn));
  }
  return [...byRank].map(([rank, lsn]) => ({ rank, lsn }));
}

function withoutSlots(fences: readonly SlotFence[], slots: readonly number[]): SlotFence[] {
  const lifted = new Set(slots);
  return fences
    .map((fence) => ({ ...fence, slots: fence.slots.filter((slot) => !lifted.has(slot)) }))
    .filter((fence) => fence.slots.length > 0);
}

type Step = { state: ReconfigState; outputs: ReconfigOutput[] };

function isDown(state: ReconfigState, rank: number): boolean {
  return state.failed.includes(rank) || state.failedOver.includes(rank);
}

/** Ends the active move (reporting it done) and starts the next one. */
function finish(state: ReconfigState): Step {
  const active = state.active;
  assert(active !== null, 'a move is active');
  const done: ReconfigOutput = {
    type: 'done',
    moveId: active.id,
    epoch: state.epoch,
    move: active.move,
  };
  const next = startNext({ ...state, active: null });
  return { state: next.state, outputs: [done, ...next.outputs] };
}

function membershipStep(
  state: ReconfigState,
  input: Extract<ReconfigInput, { type: 'failed' | 'failed-over' | 'rejoined' }>,
): Step {
  const { rank } = input;
  const active = state.active;
  if (input.type === 'failed') {
    if (isDown(state, rank)) return { state, outputs: [] };
    const next = { ...state, failed: [...state.failed, rank] };
    const failover: ReconfigOutput = { type: 'failover', rank };
    // The failed thread will never report `acquired`: the move is persisted, so it is over.
    if (active !== null && active.phase === 'acquiring' && active.move.to === rank) {
      const step = finish(next);
      return { state: step.state, outputs: [failover, ...step.outputs] };
    }
    return { state: next, outputs: [failover] };
  }
  if (input.type === 'failed-over') {
    if (!state.failed.includes(rank)) return { state, outputs: [] };
    // The failover merged the rank's chain through its commits, so its fences are lifted too.
    const next: ReconfigState = {
      ...state,
      failed: state.failed.filter((r) => r !== rank),
      failedOver: [...state.failedOver, rank],
      fences: state.fences.filter((fence) => fence.rank !== rank),
    };
    if (active !== null && active.phase === 'releasing' && active.move.from === rank) {
      return persistActive(next);
    }
    return { state: next, outputs: [] };
  }
  if (state.failed.includes(rank)) return { state, outputs: [] };
  return {
    state: { ...state, failedOver: state.failedOver.filter((r) => r !== rank) },
    outputs: [],
  };
}

/** Moves the active move to its persist phase (its slots are released, or failed over). */
function persistActive(state: ReconfigState): Step {
  const active = state.active;
  assert(active !== null, 'a move is active');
  const { move } = active;
  return {
    state: { ...state, active: { ...active, phase: 'persisting' } },
    outputs: [
      {
        type: 'persist',
        moveId: active.id,
        epoch: state.epoch + 1,
        slots: move.slots,
        owner: move.to,
      },
    ],
  };
}

function startNext(state: ReconfigState): Step {
  const [first, ...rest] = state.queue;
  if (state.active !== null || first === undefined) return { state, outputs: [] };
  const next: ReconfigState = { ...state, queue: rest, active: { ...first, phase: 'releasing' } };
  const from = first.move.from;
  if (state.failedOver.includes(from)) return persistActive(next);
  // A failed thread cannot release; the move waits for its failover (failed-over).
  if (state.failed.includes(from)) return { state: next, outputs: [] };
  return {
    state: next,
    outputs: [{ type: 'release', moveId: first.id, rank: from, slots: first.move.slots }],
  };
}
