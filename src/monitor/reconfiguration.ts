import type { SlotMove } from '../routing/index.js';

/**
 * The M-node side of moving slots (DESIGN.md section 8), as a pure step function: the caller feeds
 * inputs (a move request, or the report that a step finished) and performs the outputs (messages to
 * KN threads, the DPM write of the new epoch). Moves run one at a time, in order:
 *
 *   release(S) to the old owner  ->  persist(epoch + 1, S -> new owner)  ->  acquire(S) to the new owner
 *
 * The old owner answers `released` only after the DPM merged its log through its tail, so the new
 * owner, which starts only after the epoch is persisted, finds every acknowledged write of S.
 */
export interface ReconfigState {
  epoch: number;
  nextMoveId: number;
  queue: ReadonlyArray<{ id: number; move: SlotMove }>;
  active: { id: number; move: SlotMove; phase: 'releasing' | 'persisting' | 'acquiring' } | null;
}

export type ReconfigInput =
  | { type: 'move'; move: SlotMove }
  | { type: 'released'; moveId: number }
  | { type: 'persisted'; moveId: number }
  | { type: 'acquired'; moveId: number };

export type ReconfigOutput =
  | { type: 'release'; moveId: number; rank: number; slots: number[] }
  | { type: 'persist'; moveId: number; epoch: number; slots: number[]; owner: number }
  | { type: 'acquire'; moveId: number; rank: number; slots: number[]; epoch: number }
  | { type: 'done'; moveId: number; epoch: number; move: SlotMove };

export function initialReconfigState(epoch: number): ReconfigState {
  return { epoch, nextMoveId: 1, queue: [], active: null };
}

export function reconfigStep(
  state: ReconfigState,
  input: ReconfigInput,
): { state: ReconfigState; outputs: ReconfigOutput[] } {
  const active = state.active;
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
    const epoch = state.epoch + 1;
    return {
      state: { ...state, active: { ...active, phase: 'persisting' } },
      outputs: [{ type: 'persist', moveId: active.id, epoch, slots: move.slots, owner: move.to }],
    };
  }
  if (input.type === 'persisted' && active.phase === 'persisting') {
    const epoch = state.epoch + 1;
    return {
      state: { ...state, epoch, active: { ...active, phase: 'acquiring' } },
      outputs: [{ type: 'acquire', moveId: active.id, rank: move.to, slots: move.slots, epoch }],
    };
  }
  if (input.type === 'acquired' && active.phase === 'acquiring') {
    const done: ReconfigOutput = { type: 'done', moveId: active.id, epoch: state.epoch, move };
    const next = startNext({ ...state, active: null });
    return { state: next.state, outputs: [done, ...next.outputs] };
  }
  return { state, outputs: [] };
}

function startNext(state: ReconfigState): { state: ReconfigState; outputs: ReconfigOutput[] } {
  const [first, ...rest] = state.queue;
  if (state.active !== null || first === undefined) return { state, outputs: [] };
  return {
    state: { ...state, queue: rest, active: { ...first, phase: 'releasing' } },
    outputs: [
      { type: 'release', moveId: first.id, rank: first.move.from, slots: first.move.slots },
    ],
  };
}
