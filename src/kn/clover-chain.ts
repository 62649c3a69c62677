import { EntryFetcher } from '../dpm/entry-fetcher.js';
import {
  Entry,
  EntryOp,
  entryBytes,
  entryIsLinked,
  entryIsValid,
  entryKeyEquals,
  entryLinkBytes,
} from '../dpm/log-entry.js';
import type { RegionGeometry } from '../dpm/region.js';
import type { Fabric } from '../fabric/index.js';

/** A chain longer than this is a broken one (a cycle), not data: the walk gives up. */
export const chainHopsMax = 1 << 20;

/**
 * One-sided access to a key's chain of linked versions (clover mode, docs/baselines.md). After a
 * successful `read`, `follow` or `linkBehind`, the fields describe the version reached: its offset,
 * span, op and value (a view of a scratch buffer that the next call overwrites).
 *
 * A link read as part of an entry is a plain byte copy, which may be torn while another KN's CAS
 * changes it from 0. A non-zero link is therefore re-read with an atomic 8-byte read before it is
 * followed (a link changes once, so that value is final); a zero link needs no check, because a
 * torn read of a zero word shows a non-zero value.
 */
export class ChainWalker {
  offset = 0;
  span = 0;
  op: number = EntryOp.put;
  generation = 0;
  link = 0;
  value: Uint8Array = new Uint8Array(0);
  /** Links followed since the walker was made (each costs a read, plus one for the link word). */
  hops = 0;

  private readonly entries: EntryFetcher;

  constructor(
    private readonly fabric: Fabric,
    geometry: RegionGeometry,
  ) {
    this.entries = new EntryFetcher(fabric, geometry);
  }

  /**
   * Reads the version at `offset` (1 RT, or 2 when `spanHint` was short). False when it is not a
   * valid linked version of `key`: a stale shortcut, or a torn read.
   */
  read(offset: number, spanHint: number, key: Uint8Array): boolean {
    const length = this.entries.fetch(offset, spanHint);
    const { bytes, view } = this.entries;
    if (length === 0 || !entryIsValid(bytes, view, 0, length) || !entryIsLinked(view, 0)) {
      return false;
    }
    if (!entryKeyEquals(bytes, view, 0, key)) return false;
    this.setFields(offset, key.length);
    return true;
  }

  /**
   * Takes the version an index lookup just read (with its link) as the one just read; a non-zero
   * link is re-read atomically, as in `read`.
   */
  adopt(
    offset: number,
    span: number,
    op: number,
    generation: number,
    link: number,
    value: Uint8Array,
  ): void {
    this.offset = offset;
    this.span = span;
    this.op = op;
    this.generation = generation;
    this.link = link === 0 ? 0 : Number(this.fabric.read64(offset + span - entryLinkBytes));
    this.value = value;
  }

  /**
   * From the version just read, follows links to the newest one (1 RT per hop, plus the atomic
   * link read). False when a version on the way is invalid, which only a bug can cause once links
   * are read atomically.
   */
  follow(key: Uint8Array): boolean {
    for (let hops = 0; this.link !== 0; hops++) {
      if (hops >= chainHopsMax) return false;
      const next = this.link;
      this.hops++;
      if (!this.read(next, this.span, key)) return false;
    }
    return true;
  }

  /**
   * Links the version at `newOffset` behind the newest version, starting from the one just read:
   * CAS its link from 0 (1 RT); when another writer won, read the winner and try behind it. On
   * return the fields describe the predecessor the new version was linked behind, so `op` says
   * whether the key existed just before (the write's linearization point). False on an invalid
   * version on the way.
   */
  linkBehind(key: Uint8Array, newOffset: number): boolean {
    for (let hops = 0; hops < chainHopsMax; hops++) {
      if (!this.follow(key)) return false;
      const linkAt = this.offset + this.span - entryLinkBytes;
      const won = this.fabric.cas64(linkAt, 0n, BigInt(newOffset));
      if (won === 0n) return true;
      this.hops++;
      if (!this.read(Number(won), this.span, key)) return false;
    }
    return false;
  }

  private setFields(offset: number, keyLen: number): void {
    const v = this.entries.view;
    const valueLen = v.getUint32(Entry.valueLen, true);
    const linkAt = entryBytes(keyLen, valueLen);
    this.offset = offset;
    this.span = linkAt + entryLinkBytes;
    this.op = v.getUint8(Entry.op);
    this.generation = v.getUint32(Entry.generation, true);
    const copied = v.getUint32(linkAt, true) + v.getUint32(linkAt + 4, true) * 2 ** 32;
    this.link = copied === 0 ? 0 : Number(this.fabric.read64(offset + linkAt));
    const valueStart = Entry.key + keyLen;
    this.value = this.entries.bytes.subarray(valueStart, valueStart + valueLen);
  }
}
