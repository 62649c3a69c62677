import { IndexReader, openRegion } from '../../src/dpm/index.js';
import { LocalFabric } from '../../src/fabric/index.js';
import type { Cluster } from '../../src/index.js';
import { hashKey } from '../../src/util/hash.js';

/** Polls until `stats().dpm.unmergedBytes` is 0: the merge caught up with every commit. */
export async function waitForMerges(cluster: Cluster, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (cluster.stats().dpm.unmergedBytes > 0) {
    if (Date.now() > deadline)
      throw new Error(`merges did not catch up: ${cluster.stats().dpm.unmergedBytes} bytes left`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Reads a key straight from the DPM index, as a one-sided reader would (bypassing every KN cache). */
export function indexValue(cluster: Cluster, key: string): string | null {
  return regionValue(cluster.regionForTests, key);
}

/** Reads a key straight from the index of a DPM region (null when it is not indexed). */
export function regionValue(region: SharedArrayBuffer, key: string): string | null {
  const reader = new IndexReader(new LocalFabric(region), openRegion(region).geometry);
  const k = Buffer.from(key);
  return reader.lookup(k, hashKey(k)) ? Buffer.from(reader.value).toString() : null;
}
