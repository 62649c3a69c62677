/** Programmatic clients: the KvClient interface, the embedded client and its per-thread channels. */
export { EmbeddedClient, type KnRouter, type KvClient } from './embedded-client.js';
export { connect, type ConnectOptions } from './connect.js';
export { connectRemote, type ClusterClient, type RemoteClientOptions } from './remote-client.js';
export { LatencyFeedback } from './latency-feedback.js';
export { KnChannel, type KnChannelOptions, type RawResult } from './kn-channel.js';
export { keyBytes, valueBytes } from './validate.js';
export { openMonitorLink, type MonitorLink } from './monitor-link.js';
