import { Block, BlockState, Chain, Superblock } from '../dpm/layout.js';
import { ThreadStat, threadStatsView } from '../kn/index.js';

/** A snapshot of cluster counters; all counts are cumulative since `Cluster.start`. */
export interface ClusterStats {
  ops: { gets: number; puts: number; deletes: number; total: number };
  /** Fabric round trips (KN thread <-> DPM), and per operation. */
  rts: { total: number; perOp: number };
  /** How key lookups were served: DAC value (0 RT), own unmerged log (0 RT), shortcut (1 RT), index (miss). */
  hits: { value: number; shortcut: number; log: number; miss: number; notFound: number };
  /** Average RTs of an index lookup (a DAC miss). */
  missCostRts: number;
  dpm: {
    bytesUsed: number;
    regionBytes: number;
    blocksUsed: number;
    blocksTotal: number;
    blockBytes: number;
    /** Committed log bytes the merge has not applied to the index yet (0 once merges caught up). */
    unmergedBytes: number;
  };
  cache: { bytesUsed: number; capacityBytes: number; values: number; shortcuts: number };
  /**
   * Flushes to a file-backed region's file (msync) with `durability: 'sync'`: `kn` by KN threads
   * (at most one per group commit), `dpm` by the DPM and the M-node (merges, cleaning, allocation,
   * failover, epochs). Both stay 0 with 'async'. `persists` counts the KN threads' persist calls,
   * one per group commit in either mode.
   */
  flushes: { persists: number; kn: number; dpm: number };
  errors: number;
  kns: Array<{ id: number; threads: ThreadStats[] }>;
}

export interface ThreadStats {
  rank: number;
  ops: number;
  rts: number;
  gets: number;
  puts: number;
  deletes: number;
  valueHits: number;
  shortcutHits: number;
  logHits: number;
  misses: number;
  cacheBytesUsed: number;
  cacheCapacityBytes: number;
  missCostRts: number;
  backpressureWaits: number;
  /** Fabric persists (one per group commit) and those that flushed to the region's file. */
  persists: number;
  flushes: number;
  /** DINOMO-N mode: keys copied into this thread's partition when it acquired slots. */
  keysCopied: number;
}

function threadStats(view: Float64Array, rank: number): ThreadStats {
  const s = (i: number): number => view[i] as number;
  return {
    rank,
    ops: s(ThreadStat.gets) + s(ThreadStat.puts) + s(ThreadStat.deletes),
    rts: s(ThreadStat.rts),
    gets: s(ThreadStat.gets),
    puts: s(ThreadStat.puts),
    deletes: s(ThreadStat.deletes),
    valueHits: s(ThreadStat.valueHits),
    shortcutHits: s(ThreadStat.shortcutHits),
    logHits: s(ThreadStat.logHits),
    misses: s(ThreadStat.misses),
    cacheBytesUsed: s(ThreadStat.cacheBytesUsed),
    cacheCapacityBytes: s(ThreadStat.cacheCapacityBytes),
    missCostRts: s(ThreadStat.missCostRts),
    backpressureWaits: s(ThreadStat.backpressureWaits),
    persists: s(ThreadStat.persists),
    flushes: s(ThreadStat.flushes),
    keysCopied: s(ThreadStat.keysCopied),
  };
}

/** DPM space: blocks not free are in use; fixed areas (superblock, metadata, chains, index) count too. */
function dpmSpace(region: SharedArrayBuffer): ClusterStats['dpm'] {
  const v = new DataView(region);
  const blockBytes = v.getUint32(Superblock.blockBytes, true);
  const blockCount = v.getUint32(Superblock.blockCount, true);
  const blocksOffset = Number(v.getBigUint64(Superblock.blocksOffset, true));
  let blocksUsed = 0;
  for (let i = 0; i < blockCount; i++) {
    if (v.getUint32(blocksOffset + i * blockBytes + Block.state, true) !== BlockState.free)
      blocksUsed++;
  }
  return {
    bytesUsed: blocksOffset + blocksUsed * blockBytes,
    regionBytes: region.byteLength,
    blocksUsed,
    blocksTotal: blockCount,
    blockBytes,
    unmergedBytes: unmergedBytes(v),
  };
}

/** Walks every chain from its merge head to its tail, adding committed-but-unmerged bytes. */
function unmergedBytes(v: DataView): number {
  const chainTable = Number(v.getBigUint64(Superblock.chainTableOffset, true));
  const chainCount = v.getUint32(Superblock.chainCount, true);
  let total = 0;
  for (let rank = 0; rank < chainCount; rank++) {
    const chain = chainTable + rank * Chain.bytes;
    let block = Number(v.getBigUint64(chain + Chain.headBlock, true));
    for (let hops = 0; block !== 0 && hops < 1_000_000; hops++) {
      total +=
        v.getUint32(block + Block.commitBytes, true) - v.getUint32(block + Block.mergedBytes, true);
      block = Number(v.getBigUint64(block + Block.next, true));
    }
  }
  return total;
}

export function collectStats(
  region: SharedArrayBuffer,
  statsBuffer: SharedArrayBuffer,
  knThreads: ReadonlyArray<{ knId: number; rank: number }>,
  dpmFlushes = 0,
): ClusterStats {
  const kns = new Map<number, ThreadStats[]>();
  const sum = {
    gets: 0,
    puts: 0,
    deletes: 0,
    rts: 0,
    value: 0,
    shortcut: 0,
    log: 0,
    miss: 0,
    notFound: 0,
    missRts: 0,
    errors: 0,
    persists: 0,
    flushes: 0,
  };
  const cache = { bytesUsed: 0, capacityBytes: 0, values: 0, shortcuts: 0 };
  for (const { knId, rank } of knThreads) {
    const view = threadStatsView(statsBuffer, rank);
    const t = threadStats(view, rank);
    (kns.get(knId) ?? kns.set(knId, []).get(knId))?.push(t);
    sum.gets += t.gets;
    sum.puts += t.puts;
    sum.deletes += t.deletes;
    sum.rts += t.rts;
    sum.value += t.valueHits;
    sum.shortcut += t.shortcutHits;
    sum.log += t.logHits;
    sum.miss += t.misses;
    sum.notFound += view[ThreadStat.notFound] as number;
    sum.missRts += view[ThreadStat.missRts] as number;
    sum.errors += view[ThreadStat.errors] as number;
    sum.persists += t.persists;
    sum.flushes += t.flushes;
    cache.bytesUsed += t.cacheBytesUsed;
    cache.capacityBytes += t.cacheCapacityBytes;
    cache.values += view[ThreadStat.cacheValues] as number;
    cache.shortcuts += view[ThreadStat.cacheShortcuts] as number;
  }
  const total = sum.gets + sum.puts + sum.deletes;
  return {
    ops: { gets: sum.gets, puts: sum.puts, deletes: sum.deletes, total },
    rts: { total: sum.rts, perOp: total === 0 ? 0 : sum.rts / total },
    hits: {
      value: sum.value,
      shortcut: sum.shortcut,
      log: sum.log,
      miss: sum.miss,
      notFound: sum.notFound,
    },
    missCostRts: sum.miss === 0 ? 0 : sum.missRts / sum.miss,
    dpm: dpmSpace(region),
    cache,
    flushes: { persists: sum.persists, kn: sum.flushes, dpm: dpmFlushes },
    errors: sum.errors,
    kns: [...kns].map(([id, threads]) => ({ id, threads })),
  };
}
