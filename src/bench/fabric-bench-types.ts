/** What the fabric benchmark measures and how the two processes exchange it. */
import type { FabricGrantJson } from '../fabric/index.js';

export interface FabricOpSpec {
  name: string;
  kind: 'read' | 'write' | 'cas' | 'faa';
  offset: number;
  bytes: number;
}

/** The operation kinds, each on its own cache line of the benchmark region. */
export const fabricOps: readonly FabricOpSpec[] = [
  { name: 'read 8 B', kind: 'read', offset: 0, bytes: 8 },
  { name: 'write 8 B', kind: 'write', offset: 64, bytes: 8 },
  { name: 'read 1 KiB', kind: 'read', offset: 4096, bytes: 1024 },
  { name: 'write 1 KiB', kind: 'write', offset: 8192, bytes: 1024 },
  { name: 'cas u64', kind: 'cas', offset: 128, bytes: 8 },
  { name: 'faa u64', kind: 'faa', offset: 192, bytes: 8 },
];

export interface FabricBenchJob {
  grant: FabricGrantJson;
  ops: number;
  warmup: number;
}

export interface FabricOpResult {
  op: string;
  /** Median and 99th percentile of single NativeFabric calls, timed one by one. */
  tsMedianUs: number;
  tsP99Us: number;
  /** Closed loop of NativeFabric calls. */
  tsOpsPerSec: number;
  /** The same operations in a C loop through the same endpoint. */
  nativeMeanUs: number;
  nativeOpsPerSec: number;
}
