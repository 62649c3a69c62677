import { Entry, EntryOp } from '../dpm/log-entry.js';
import { assert } from '../util/assert.js';

/**
 * The KN thread's record of its own writes that the DPM may not have merged into the index yet.
 * Until the merge passes an entry, an index lookup could return an older version, so reads consult
 * this record first and answer from the thread's local copy ("mirror") of the log block, in 0 RT.
 * Each key maps to its NEWEST entry (the original scanned from the block start and returned the
 * oldest one: bug 4).
 *
 * Records point into block mirrors that the log writer keeps until the DPM confirms the merge of
 * that block; `dropBelow` is called before a mirror is reused. Entries are found by key hash, with
 * collisions chained and resolved by comparing the key bytes in the mirror, so a lookup allocates
 * nothing.
 */
export interface RecentWrite {
  hash: number;
  lsn: number;
  mirror: Uint8Array;
  /** Offset of the entry inside the mirror (and inside the DPM block). */
  at: number;
  next: RecentWrite | null;
}

export class RecentWrites {
  private readonly byHash = new Map<number, RecentWrite>();
  private entries = 0;
  private readonly spare: RecentWrite[] = [];

  get size(): number {
    return this.entries;
  }

  /** Records that this thread's newest committed entry for the key is `mirror[at]` at `lsn`. */
  record(hash: number, key: Uint8Array, lsn: number, mirror: Uint8Array, at: number): void {
    const existing = this.find(hash, key);
    if (existing !== null) {
      assert(lsn > existing.lsn, 'a newer write has a higher LSN');
      existing.lsn = lsn;
      existing.mirror = mirror;
      existing.at = at;
      return;
    }
    const node = this.spare.pop() ?? { hash: 0, lsn: 0, mirror, at: 0, next: null };
    node.hash = hash;
    node.lsn = lsn;
    node.mirror = mirror;
    node.at = at;
    node.next = this.byHash.get(hash) ?? null;
    this.byHash.set(hash, node);
    this.entries++;
  }

  /** The record for `key`, or null. */
  find(hash: number, key: Uint8Array): RecentWrite | null {
    for (let node = this.byHash.get(hash) ?? null; node !== null; node = node.next) {
      if (entryKeyMatches(node.mirror, node.at, key)) return node;
    }
    return null;
  }

  /** Drops every record with lsn < `lsn` (their block was merged and its mirror is about to be reused). */
  dropBelow(lsn: number): number {
    return this.dropMatching((node) => node.lsn < lsn);
  }

  /** Drops the records whose key matches `predicate` (ownership handoff of some slots). */
  dropWhere(predicate: (key: Uint8Array) => boolean): number {
    return this.dropMatching((node) => predicate(entryKey(node.mirror, node.at)));
  }

  private dropMatching(drop: (node: RecentWrite) => boolean): number {
    let dropped = 0;
    for (const [hash, head] of this.byHash) {
      let keep: RecentWrite | null = null;
      for (let node: RecentWrite | null = head; node !== null;) {
        const next: RecentWrite | null = node.next;
        if (drop(node)) {
          dropped++;
          node.next = null;
          if (this.spare.length < 1024) this.spare.push(node);
        } else {
          node.next = keep;
          keep = node;
        }
        node = next;
      }
      if (keep === null) this.byHash.delete(hash);
      else this.byHash.set(hash, keep);
    }
    this.entries -= dropped;
    return dropped;
  }

  clear(): void {
    this.byHash.clear();
    this.entries = 0;
  }
}

function keyLength(mirror: Uint8Array, at: number): number {
  return (mirror[at + Entry.keyLen] as number) | ((mirror[at + Entry.keyLen + 1] as number) << 8);
}

export function entryKey(mirror: Uint8Array, at: number): Uint8Array {
  const start = at + Entry.key;
  return mirror.subarray(start, start + keyLength(mirror, at));
}

/** True when the entry at `mirror[at]` has key `key`. */
export function entryKeyMatches(mirror: Uint8Array, at: number, key: Uint8Array): boolean {
  if (keyLength(mirror, at) !== key.length) return false;
  const start = at + Entry.key;
  for (let i = 0; i < key.length; i++) if (mirror[start + i] !== key[i]) return false;
  return true;
}

/** True when the recorded entry is a tombstone. */
export function isTombstone(node: RecentWrite): boolean {
  return node.mirror[node.at + Entry.op] === EntryOp.delete;
}

/** The value bytes of a recorded put, as a view into the mirror. */
export function recordedValue(node: RecentWrite): Uint8Array {
  const m = node.mirror;
  const at = node.at;
  const valueBytes =
    ((m[at + Entry.valueLen] as number) |
      ((m[at + Entry.valueLen + 1] as number) << 8) |
      ((m[at + Entry.valueLen + 2] as number) << 16) |
      ((m[at + Entry.valueLen + 3] as number) << 24)) >>>
    0;
  const start = at + Entry.key + keyLength(m, at);
  return m.subarray(start, start + valueBytes);
}
