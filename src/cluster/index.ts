/** Assembly of an embedded cluster: region, DPM manager, KN threads, clients, stats. */
export {
  Cluster,
  type FailoverReport,
  type KnChangeReport,
  type RoutingSnapshot,
} from './embedded-cluster.js';
export type { ClusterStats, ThreadStats } from './cluster-stats.js';
