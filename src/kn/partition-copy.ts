import type { PartitionScanPage } from '../dpm/dpm-manager-core.js';
import { EntryOp } from '../dpm/log-entry.js';
import {
  partitionedKeyBytesMax,
  slotOfTaggedKey,
  tagKey,
  untaggedKey,
} from '../dpm/partition-key.js';
import { hashKey } from '../util/hash.js';

/** What the copier needs from its KN thread. */
export interface PartitionCopyHost {
  readonly rank: number;
  /** Whether the thread still waits to serve `slot` (it may have been released meanwhile). */
  settling(slot: number): boolean;
  /** One-sided index lookup (2 RT); on success `value` is the key's newest value. */
  lookup(key: Uint8Array, hash: number): boolean;
  readonly value: Uint8Array;
  /** Stages a write no client waits for, in the thread's open batch. */
  stage(op: number, key: Uint8Array, value: Uint8Array | null, hash: number): Promise<void>;
  /** Commits the open batch; throws UNAVAILABLE (transient) when the commit failed. */
  commit(): void;
  /** One page of the partition scan, retried across DPM restarts. */
  scan(
    slots: readonly number[],
    tableVersion: number,
    fromBucket: number,
  ): Promise<PartitionScanPage>;
  /** Runs `step` between request batches, again after a transient failure. */
  control(step: () => Promise<void>): Promise<void>;
  /** Counts copied keys. */
  copied(keys: number): void;
}

/** Keys per scan page: one page is copied in one control step, which pauses the thread's requests. */
export const copyPageKeys = 256;

/**
 * DINOMO-N mode's reconfiguration cost (docs/baselines.md): a thread that acquires slots copies
 * their keys from the previous owners' partitions into its own before it serves them. Page by page,
 * it copies each key (read from the old partition, written under its own tag) and commits, and only
 * then deletes the old copies and commits again. So at every moment each key of a slot is in some
 * partition with its newest value: a copier that fails part way leaves the rest where it was, and
 * whoever takes the slots next copies from both partitions (duplicates hold equal values, as nobody
 * serves the slots until a copy completes).
 */
export class PartitionCopier {
  private readonly host: PartitionCopyHost;
  private readonly ownKey = new Uint8Array(partitionedKeyBytesMax);
  private value = new Uint8Array(256);

  constructor(host: PartitionCopyHost) {
    this.host = host;
  }

  /** Copies every key of `slots` held in other partitions into this thread's partition. */
  async copyIn(slots: readonly number[]): Promise<void> {
    let tableVersion = -1;
    let fromBucket = 0;
    for (;;) {
      const live = slots.filter((slot) => this.host.settling(slot));
      if (live.length === 0) return;
      const page = await this.host.scan(live, tableVersion, fromBucket);
      await this.host.control(() => this.copyPage(page.keys));
      if (page.nextBucket < 0) return;
      tableVersion = page.tableVersion;
      fromBucket = page.nextBucket;
    }
  }

  private async copyPage(keys: readonly Uint8Array[]): Promise<void> {
    const host = this.host;
    const moved: Uint8Array[] = [];
    for (const stored of keys) {
      // A slot released while it was being copied belongs to its next owner, who copies it from
      // here: what this thread committed before the release is merged before that owner starts.
      if (!host.settling(slotOfTaggedKey(stored))) continue;
      if (!host.lookup(stored, hashKey(stored))) continue;
      const value = this.keep(host.value);
      const own = tagKey(host.rank, untaggedKey(stored), this.ownKey);
      await host.stage(EntryOp.put, own, value, hashKey(own));
      moved.push(stored);
    }
    host.commit();
    for (const stored of moved) await host.stage(EntryOp.delete, stored, null, hashKey(stored));
    host.commit();
    host.copied(moved.length);
  }

  /** Copies a looked-up value out of the index reader's buffer, which the next lookup reuses. */
  private keep(value: Uint8Array): Uint8Array {
    if (value.length > this.value.length) {
      this.value = new Uint8Array(Math.max(value.length, this.value.length * 2));
    }
    this.value.set(value);
    return this.value.subarray(0, value.length);
  }
}
