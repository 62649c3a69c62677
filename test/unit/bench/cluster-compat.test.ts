import { describe, expect, it } from 'vitest';
import type { BenchClusterClass } from '../../../src/bench/index.js';
import type { Cluster } from '../../../src/index.js';

describe('the real Cluster', () => {
  it('satisfies the structural interface the benchmark drives', () => {
    // The check is the type annotation: tsc fails here if Cluster stops fitting BenchClusterClass.
    const accept = (clusterClass: BenchClusterClass): BenchClusterClass => clusterClass;
    const typed: (cluster: typeof Cluster) => BenchClusterClass = accept;
    expect(typeof typed).toBe('function');
  });
});
