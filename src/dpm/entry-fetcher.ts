import { entryBytesMax, entryHeaderBytes } from '../config/limits.js';
import type { Fabric } from '../fabric/index.js';
import { entryLinkBytes, entrySpanAt } from './log-entry.js';
import type { RegionGeometry } from './region.js';

/** The largest entry in a block: the largest body, plus a link in clover mode. */
const spanMax = entryBytesMax + entryLinkBytes;

/**
 * Reads whole log entries from the region with one-sided reads, for the KN-side index reader and
 * clover mode's chain walker. `fetch` reads `hintBytes` first (1 RT) and the whole span again when
 * the hint was short; the bytes land in `bytes` (a scratch buffer the next fetch overwrites).
 * Validation (CRC, op, key) is the caller's: this only refuses offsets and sizes that cannot be an
 * entry's, which a torn read or a stale pointer can produce.
 */
export class EntryFetcher {
  bytes = new Uint8Array(4096);
  view = new DataView(this.bytes.buffer);

  constructor(
    private readonly fabric: Fabric,
    private readonly geometry: RegionGeometry,
  ) {}

  /** Reads the entry at `offset`; returns the bytes read, or 0 when it cannot be an entry. */
  fetch(offset: number, hintBytes: number): number {
    const g = this.geometry;
    const blocksEnd = g.blocksOffset + g.blockCount * g.blockBytes;
    if (offset < g.blocksOffset || offset % 8 !== 0 || offset + entryHeaderBytes > blocksEnd) {
      return 0;
    }
    const blockEnd = offset - ((offset - g.blocksOffset) % g.blockBytes) + g.blockBytes;
    let length = Math.max(entryHeaderBytes, Math.min(hintBytes, blockEnd - offset, spanMax));
    this.ensure(length);
    this.fabric.read(offset, length, this.bytes, 0);
    const span = entrySpanAt(this.view, 0);
    if (span > length) {
      // The hint was too small: only possible when the pointer changed under us or a read was torn.
      if (span > spanMax || offset + span > blockEnd) return 0;
      length = span;
      this.ensure(length);
      this.fabric.read(offset, length, this.bytes, 0);
    }
    return length;
  }

  private ensure(length: number): void {
    if (this.bytes.length >= length) return;
    this.bytes = new Uint8Array(Math.max(length, this.bytes.length * 2));
    this.view = new DataView(this.bytes.buffer);
  }
}
