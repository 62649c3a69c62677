import { describe, expect, it } from 'vitest';
import { FailureDetector } from '../../../src/monitor/index.js';

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
