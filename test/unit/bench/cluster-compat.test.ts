import { describe, expect, it } from 'vitest';
import type { BenchClusterClass, ElasticClusterClass } from '../../../src/bench/index.js';
import type { Cluster } from '../../../src/index.js';

describe('the real Cluster', () => {
  it('satisfies the structural interface the benchmark drives', () => {
    // The check is the type annotation: tsc fails here if Cluster stops fitting BenchClusterClass.
    const accept = (clusterClass: BenchClusterClass): BenchClusterClass => clusterClass;
    const typed: (cluster: typeof Cluster) => BenchClusterClass = accept;
    expect(typeof typed).toBe('function');
  });

  it('satisfies the elastic interface dinomo trigger and demo --elastic drive', () => {
    const accept = (clusterClass: ElasticClusterClass): ElasticClusterClass => clusterClass;
    const typed: (cluster: typeof Cluster) => ElasticClusterClass = accept;
    expect(typeof typed).toBe('function');
  });
});
