import { describe, expect, it } from 'vitest';
import { LatencyFeedback } from '../../../src/client/index.js';

describe('LatencyFeedback', () => {
  it('counts latencies in power-of-two buckets and starts a new period on take', () => {
    const f = new LatencyFeedback();
    for (const us of [0, 1, 3, 200, 255, 256, 1e12]) f.record(us);
    expect(f.take()).toEqual({
      ops: 7,
      buckets: [
        { latencyUs: 1, count: 1 },
        { latencyUs: 2, count: 1 },
        { latencyUs: 4, count: 1 },
        { latencyUs: 256, count: 2 },
        { latencyUs: 512, count: 1 },
        { latencyUs: 2 ** 39, count: 1 },
      ],
    });
    expect(f.take()).toEqual({ ops: 0, buckets: [] });
  });
});
