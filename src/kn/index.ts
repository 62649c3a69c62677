/**
 * The KN thread: request handling, DAC, staging log and group commit. The rest of the code uses
 * the wire format (to talk to a KN thread), the stats layout (to read its counters) and the worker
 * entry point `kn-worker.js`.
 */
export {
  BatchWriter,
  RequestReader,
  readResponses,
  WireOp,
  WireStatus,
  type WireOpCode,
} from './wire.js';
export {
  ThreadStat,
  threadStatSlots,
  threadStatsBytes,
  threadStatsView,
  type ThreadStatName,
} from './thread-stats.js';
export type { KnThreadSettings, KnWorkerData } from './kn-worker-data.js';
export {
  embeddedLocation,
  knControlActorName,
  knProcessThreadLocation,
  knThreadName,
  monitorActorName,
  type KnControlMessage,
  type MonitorMessage,
  type KnPong,
  type KnReleased,
  type KnStopped,
} from './kn-control.js';
export { postBatch, transferBytesMin } from './post-batch.js';
