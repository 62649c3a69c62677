import { describe, expect, it } from 'vitest';
import {
  initialReconfigState,
  reconfigStep,
  type ReconfigOutput,
  type ReconfigState,
} from '../../../src/monitor/index.js';
import { evenSlotMap, planAddThread, planRemoveThread } from '../../../src/routing/index.js';

function run(state: ReconfigState, ...inputs: Parameters<typeof reconfigStep>[1][]) {
  const outputs: ReconfigOutput[] = [];
  for (const input of inputs) {
    const next = reconfigStep(state, input);
    state = next.state;
    outputs.push(...next.outputs);
  }
  return { state, outputs };
}

describe('reconfigStep (M-node slot moves)', () => {
  it('releases, then persists the next epoch, then lets the new owner acquire', () => {
    const move = { slots: [1, 2], from: 0, to: 1 };
    const { state, outputs } = run(
      initialReconfigState(7),
      { type: 'move', move },
      { type: 'released', moveId: 1, lsn: 640 },
      { type: 'persisted', moveId: 1 },
      { type: 'acquired', moveId: 1 },
    );
    expect(outputs.map((o) => o.type)).toEqual(['release', 'persist', 'acquire', 'done']);
    expect(outputs[1]).toMatchObject({ epoch: 8, owner: 1, slots: [1, 2] });
    // The new owner serves reads once the old owner's chain is merged through its released LSN.
    expect(outputs[2]).toMatchObject({ rank: 1, epoch: 8, waitFor: [{ rank: 0, lsn: 640 }] });
    expect(state.epoch).toBe(8);
    expect(state.active).toBeNull();
    expect(state.fences).toEqual([]);
  });

  it('keeps a fence for the next owner when the new owner fails before it settled', () => {
    const acquiring = run(
      initialReconfigState(1),
      { type: 'move', move: { slots: [4, 5], from: 0, to: 1 } },
      { type: 'move', move: { slots: [5], from: 1, to: 2 } },
      { type: 'released', moveId: 1, lsn: 900 },
      { type: 'persisted', moveId: 1 },
    );
    expect(acquiring.state.fences).toEqual([{ rank: 0, lsn: 900, slots: [4, 5] }]);
    // Thread 1 dies before it answered `acquired`: the move ends, and its failover releases slot 5.
    const next = run(
      acquiring.state,
      { type: 'failed', rank: 1 },
      { type: 'failed-over', rank: 1 },
      { type: 'persisted', moveId: 2 },
    );
    // Thread 2 must still wait for thread 0's log, which nobody has waited for yet.
    expect(next.outputs.at(-1)).toEqual({
      type: 'acquire',
      moveId: 2,
      rank: 2,
      slots: [5],
      epoch: 3,
      waitFor: [{ rank: 0, lsn: 900 }],
    });
    const done = run(next.state, { type: 'acquired', moveId: 2 });
    expect(done.state.fences).toEqual([{ rank: 0, lsn: 900, slots: [4] }]);
  });

  it("asks one merge per rank, through its highest LSN, and lifts a failed-over rank's fences", () => {
    const state: ReconfigState = {
      ...initialReconfigState(1),
      fences: [
        { rank: 0, lsn: 100, slots: [1] },
        { rank: 0, lsn: 300, slots: [2] },
        { rank: 3, lsn: 50, slots: [2, 7] },
        { rank: 4, lsn: 70, slots: [8] },
      ],
    };
    const acquire = run(
      state,
      { type: 'move', move: { slots: [1, 2], from: 5, to: 6 } },
      { type: 'released', moveId: 1, lsn: 10 },
      { type: 'persisted', moveId: 1 },
    ).outputs.at(-1);
    expect(acquire).toMatchObject({
      waitFor: [
        { rank: 0, lsn: 300 },
        { rank: 3, lsn: 50 },
        { rank: 5, lsn: 10 },
      ],
    });
    const over = run(state, { type: 'failed', rank: 0 }, { type: 'failed-over', rank: 0 });
    expect(over.state.fences.map((f) => f.rank)).toEqual([3, 4]);
  });

  it('runs moves one at a time, in order, and ignores stale or out-of-phase reports', () => {
    const first = run(
      initialReconfigState(1),
      { type: 'move', move: { slots: [1], from: 0, to: 1 } },
      { type: 'move', move: { slots: [2], from: 0, to: 2 } },
    );
    expect(first.outputs).toEqual([{ type: 'release', moveId: 1, rank: 0, slots: [1] }]);
    // Acquired before persisted, and a report for the queued move: both ignored.
    const ignored = run(
      first.state,
      { type: 'acquired', moveId: 1 },
      { type: 'released', moveId: 2, lsn: 640 },
    );
    expect(ignored.outputs).toEqual([]);
    const rest = run(
      ignored.state,
      { type: 'released', moveId: 1, lsn: 640 },
      { type: 'persisted', moveId: 1 },
      { type: 'acquired', moveId: 1 },
    );
    expect(rest.outputs.map((o) => o.type)).toEqual(['persist', 'acquire', 'done', 'release']);
    expect(rest.outputs[3]).toMatchObject({ moveId: 2, rank: 0, slots: [2] });
  });
});

describe('slot move planning', () => {
  it('adding a thread takes about 1/N of the slots, evenly from every owner', () => {
    const owners = evenSlotMap(3);
    const moves = planAddThread(owners, 3);
    expect(moves.map((m) => m.from).sort()).toEqual([0, 1, 2]);
    const moved = moves.reduce((n, m) => n + m.slots.length, 0);
    expect(moved).toBe(16384 - 3 * 4096);
    for (const m of moves) for (const slot of m.slots) expect(owners[slot]).toBe(m.from);
  });

  it('removing a thread hands all its slots to the survivors, round-robin', () => {
    const owners = evenSlotMap(4);
    const moves = planRemoveThread(owners, 2, [0, 1, 3]);
    expect(moves.map((m) => m.to)).toEqual([0, 1, 3]);
    expect(moves.reduce((n, m) => n + m.slots.length, 0)).toBe(4096);
    const sizes = moves.map((m) => m.slots.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
  });
});

describe('reconfigStep with failures', () => {
  it('replaces the release of a failed thread by its failover', () => {
    const move = { slots: [5], from: 0, to: 1 };
    const started = run(initialReconfigState(1), { type: 'move', move });
    expect(started.outputs).toEqual([{ type: 'release', moveId: 1, rank: 0, slots: [5] }]);
    const failed = run(started.state, { type: 'failed', rank: 0 });
    expect(failed.outputs).toEqual([{ type: 'failover', rank: 0 }]);
    // Nothing may move until the failover fenced the thread and merged its log.
    const over = run(failed.state, { type: 'failed-over', rank: 0 });
    expect(over.outputs).toEqual([{ type: 'persist', moveId: 1, epoch: 2, slots: [5], owner: 1 }]);
  });

  it('skips the release of later moves away from a failed-over thread', () => {
    const { state } = run(
      initialReconfigState(3),
      { type: 'failed', rank: 2 },
      { type: 'failed-over', rank: 2 },
    );
    const next = run(state, { type: 'move', move: { slots: [1, 2], from: 2, to: 0 } });
    expect(next.outputs).toEqual([
      { type: 'persist', moveId: 1, epoch: 4, slots: [1, 2], owner: 0 },
    ]);
  });

  it('ends a move to a thread that fails before acquiring, once it is persisted', () => {
    const move = { slots: [9], from: 0, to: 1 };
    const acquiring = run(
      initialReconfigState(1),
      { type: 'move', move },
      { type: 'move', move: { slots: [9], from: 1, to: 0 } },
      { type: 'released', moveId: 1, lsn: 640 },
      { type: 'persisted', moveId: 1 },
    );
    expect(acquiring.outputs.at(-1)).toMatchObject({ type: 'acquire', rank: 1 });
    const failed = run(acquiring.state, { type: 'failed', rank: 1 });
    expect(failed.outputs.map((o) => o.type)).toEqual(['failover', 'done']);
    // The next move takes the slot away from the failed thread: it waits for the failover.
    expect(failed.state.active).toMatchObject({ id: 2, phase: 'releasing' });
    const over = run(failed.state, { type: 'failed-over', rank: 1 });
    expect(over.outputs).toEqual([{ type: 'persist', moveId: 2, epoch: 3, slots: [9], owner: 0 }]);
  });

  it('lets a rejoined rank release normally again and ignores repeated failure reports', () => {
    const { state } = run(
      initialReconfigState(1),
      { type: 'failed', rank: 0 },
      { type: 'failed', rank: 0 },
      { type: 'failed-over', rank: 0 },
      { type: 'rejoined', rank: 0 },
    );
    expect(state.failed).toEqual([]);
    expect(state.failedOver).toEqual([]);
    const next = run(state, { type: 'move', move: { slots: [3], from: 0, to: 1 } });
    expect(next.outputs).toEqual([{ type: 'release', moveId: 1, rank: 0, slots: [3] }]);
  });
});
