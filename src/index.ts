/**
 * dinomo: a key-value store for disaggregated persistent memory (DINOMO, VLDB 2023).
 *
 *   const cluster = await Cluster.start({ kns: 1, threadsPerKn: 2 });
 *   const kv = cluster.client();
 *   await kv.put('user:1', 'alice');
 *   const value = await kv.get('user:1');   // Buffer | null
 *   await cluster.stop();
 *
 * Errors are DinomoError with a stable `code` (docs/errors.md).
 */
export {
  Cluster,
  type ClusterStats,
  type FailoverReport,
  type KnChangeReport,
  type RoutingSnapshot,
  type ThreadStats,
} from './cluster/index.js';
export { connect, type ClusterClient, type ConnectOptions, type KvClient } from './client/index.js';
export type { ClusterMode, ClusterOptions } from './config/index.js';
export { keyBytesMax, valueBytesMax, slotCount } from './config/index.js';
export { DinomoError, isDinomoError, ErrorCodes, type ErrorCode } from './errors/index.js';
