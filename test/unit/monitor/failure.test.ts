import { describe, expect, it } from 'vitest';
import {
  FailureDetector,
  initialReconfigState,
  reconfigStep,
  type ReconfigInput,
  type ReconfigOutput,
  type ReconfigState,
} from '../../../src/monitor/index.js';

function run(state: ReconfigState, ...inputs: ReconfigInput[]) {
  const outputs: ReconfigOutput[] = [];
  for (const input of inputs) {
    const next = reconfigStep(state, input);
    state = next.state;
    outputs.push(...next.outputs);
  }
  return { state, outputs };
}

describe('FailureDetector (heartbeats and leases)', () => {
  it('grants leases to heartbeats and suspects a silent thread', () => {
    const d = new FailureDetector({ leaseUs: 300, suspectAfterUs: 500 });
    d.register(0, 0, 0);
    d.register(1, 0, 0);
    expect(d.heartbeat(0, 0, 400)).toEqual({ granted: true, leaseUs: 300 });
    expect(d.leaseExpiryUs(0)).toBe(700);
    expect(d.suspects(600)).toEqual([1]);
    expect(d.suspects(1000)).toEqual([0, 1]);
  });

  it('refuses a failed thread and a replaced incarnation, and ends the lease it granted', () => {
    const d = new FailureDetector({ leaseUs: 300, suspectAfterUs: 500 });
    d.register(2, 0, 0);
    d.heartbeat(2, 0, 100);
    // Failover may start only when the lease the M-node granted has ended.
    expect(d.markFailed(2)).toBe(400);
    expect(d.heartbeat(2, 0, 200)).toMatchObject({ granted: false });
    expect(d.leaseExpiryUs(2)).toBe(400);
    expect(d.suspects(10_000)).toEqual([]);
    // A restart with the same rank comes with the incarnation the fence allows.
    d.register(2, 1, 500);
    expect(d.heartbeat(2, 0, 600)).toMatchObject({ granted: false, reason: /replaced/ });
    expect(d.heartbeat(2, 1, 600)).toMatchObject({ granted: true });
    expect(d.incarnationOf(2)).toBe(1);
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
      { type: 'released', moveId: 1 },
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
