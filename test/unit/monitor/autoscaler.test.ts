import { describe, expect, it } from 'vitest';
import { Autoscaler } from '../../../src/cluster/autoscaler.js';
import { ThreadStat, threadStatsBytes, threadStatsView } from '../../../src/kn/thread-stats.js';
import { formatLine } from '../../../src/monitor/index.js';
import { VirtualClock } from '../bench/fakes.js';

/** Two KNs of two threads; `busy` sets how much of each period each KN's threads are busy. */
function setup(act: boolean) {
  const clock = new VirtualClock();
  const statsBuffer = new SharedArrayBuffer(threadStatsBytes(4));
  const kns = [
    { knId: 1, ranks: [0, 1] },
    { knId: 2, ranks: [2, 3] },
  ];
  const calls: string[] = [];
  let feedback: { ops: number; buckets: Array<{ latencyUs: number; count: number }> } | null = null;
  const scaler = new Autoscaler(
    {
      clock,
      statsBuffer,
      liveKns: () => kns,
      addKn: () => {
        calls.push('add');
        return Promise.resolve({ knId: 3 });
      },
      removeKn: (knId) => {
        calls.push(`remove ${knId}`);
        return Promise.resolve();
      },
      takeFeedback: () => feedback,
    },
    act,
    { decisionPeriodMs: 1000, gracePeriodMs: 0 },
  );
  const busy = (fractionByKn: number[], periodUs: number): void => {
    kns.forEach(({ ranks }, k) => {
      for (const rank of ranks) {
        const view = threadStatsView(statsBuffer, rank);
        view[ThreadStat.busyUs] =
          (view[ThreadStat.busyUs] as number) + (fractionByKn[k] ?? 0) * periodUs;
        view[ThreadStat.gets] = (view[ThreadStat.gets] as number) + 1000;
      }
    });
  };
  const setFeedback = (f: typeof feedback): void => {
    feedback = f;
  };
  return { clock, scaler, busy, calls, setFeedback };
}

describe('Autoscaler (the M-node monitoring loop)', () => {
  it('logs a scale-in decision with its reason, and only carries it out when allowed', async () => {
    for (const act of [false, true]) {
      const { clock, scaler, busy, calls } = setup(act);
      scaler.start();
      busy([0.6, 0.05], 1_000_000);
      clock.fireNext();
      await Promise.resolve();
      const [decision] = scaler.decisions();
      expect(decision).toMatchObject({ action: 'remove', knId: 2 });
      expect(decision?.inputs.minOccupancy).toBeCloseTo(0.05, 5);
      expect(decision === undefined ? '' : formatLine(decision)).toMatch(/remove KN 2/);
      expect(calls).toEqual(act ? ['remove 2'] : []);
      scaler.stop();
    }
  });

  it('decides nothing dramatic when every KN is moderately busy, and says why', () => {
    const { clock, scaler, busy } = setup(false);
    scaler.start();
    busy([0.5, 0.4], 1_000_000);
    clock.fireNext();
    const [decision] = scaler.decisions();
    expect(decision?.action).toBe('none');
    expect(decision?.reason).toMatch(/no client feedback/);
    expect(decision?.reason).toMatch(/min occupancy 0\.40/);
  });

  it('scales out on the clients merged p99 above the SLO when every KN is busy', async () => {
    const { clock, scaler, busy, calls, setFeedback } = setup(true);
    scaler.start();
    busy([0.7, 0.5], 1_000_000);
    // 98 fast requests and 2 at 32 ms: the merged p99 is above the 16 ms SLO.
    setFeedback({
      ops: 100,
      buckets: [
        { latencyUs: 256, count: 98 },
        { latencyUs: 32_768, count: 2 },
      ],
    });
    clock.fireNext();
    await Promise.resolve();
    expect(scaler.decisions()[0]).toMatchObject({ action: 'add' });
    expect(calls).toEqual(['add']);
  });
});
