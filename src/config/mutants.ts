/**
 * Mutants: switches that deliberately break one protocol step in the real code, so the
 * linearizability suite can show it would notice (property-tests, issue 3). Each names the rule it
 * breaks. They exist only for that proof: the public Cluster options do not expose them, and no
 * production path sets one. Leaving every switch off (the default) is the correct system.
 */
export interface Mutants {
  /** KN: acknowledge a write when it is staged, before its batch and commit word are written. */
  ackBeforeCommit?: boolean;
  /** DPM: recovery keeps commit offsets without checking entries, and merges skip checksums. */
  acceptTornEntries?: boolean;
  /** DPM: a merge overwrites the indexed entry in log arrival order, ignoring versions. */
  mergeByArrival?: boolean;
  /** KN: a thread releasing slots does not wait until the DPM merged its log (new owner reads stale). */
  skipMergeOnHandoff?: boolean;
  /** KN: a thread releasing slots keeps their keys in its DAC (stale if the slots come back). */
  noDacInvalidation?: boolean;
  /**
   * Failover does not stop the failed KN thread: the DPM does not fence it, the M-node does not wait
   * for its lease to end, and threads serve without a valid lease. A failed thread that still runs
   * (paused, or cut off from the M-node only) keeps serving next to its successor.
   */
  noFencing?: boolean;
  /**
   * DINOMO-N mode (docs/baselines.md): a thread serves the slots it acquires without copying their
   * keys from the previous owners' partitions into its own (the keys seem lost).
   */
  skipPartitionCopy?: boolean;
}

export type MutantName = keyof Mutants;

export const mutantNames: readonly MutantName[] = [
  'ackBeforeCommit',
  'acceptTornEntries',
  'mergeByArrival',
  'skipMergeOnHandoff',
  'noDacInvalidation',
  'noFencing',
  'skipPartitionCopy',
];
