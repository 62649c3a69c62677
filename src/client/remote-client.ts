import {
  decodeSlotMap,
  type KnEndpoint,
  type RnMessage,
  type RoutingTable,
} from '../routing/index.js';
import { DinomoError } from '../errors/index.js';
import { systemClock, type Clock } from '../time/index.js';
import { EmbeddedClient, type KnRouter, type KvClient } from './embedded-client.js';
import type { KnChannel } from './kn-channel.js';
import { openMonitorLink } from './monitor-link.js';
import { TcpKnLink } from './tcp-kn-link.js';

export interface RemoteClientOptions {
  /** The monitor's control port (the RN). */
  host: string;
  port: number;
  /** The cluster secret: the client proves it holds it to the monitor. */
  secret: string | Uint8Array;
  /** How long a request may wait for its answer, and for how long refused requests are retried. */
  requestTimeoutMs?: number;
  /** Requests in flight per KN thread at most. */
  inflightMax?: number;
  clock?: Clock;
}

/** A client of a cluster in other processes: KvClient, plus close(). */
export interface ClusterClient extends KvClient {
  /** Closes every connection; requests in flight fail with CLOSED. */
  close(): Promise<void>;
}

const defaultRequestTimeoutMs = 10_000;
const defaultInflightMax = 4096;
/** At most one routing fetch starts in this interval, however many requests are refused. */
const refreshIntervalUs = 20_000;

/**
 * The routing of a remote client: the slot map and KN thread endpoints from the RN (the monitor),
 * fetched at start and again when a request is refused or unanswered, and one TCP connection per KN
 * thread, opened when a request first needs it and replaced after it closes.
 */
class RemoteRouter implements KnRouter {
  readonly slotMap = new Uint16Array(16384);
  private readonly links = new Map<number, TcpKnLink>();
  private endpoints = new Map<number, KnEndpoint>();
  private fetching = false;
  private lastFetchUs = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(
    private readonly fetch: () => Promise<RoutingTable>,
    private readonly options: Required<Omit<RemoteClientOptions, 'host' | 'port' | 'secret'>>,
  ) {}

  async load(): Promise<void> {
    this.apply(await this.fetch());
    this.lastFetchUs = this.options.clock.nowUs();
  }

  channel(rank: number): KnChannel | undefined {
    const held = this.links.get(rank);
    if (held !== undefined) return held.channel;
    const endpoint = this.endpoints.get(rank);
    if (endpoint === undefined || this.closed) return undefined;
    const link = new TcpKnLink({
      host: endpoint.host,
      port: endpoint.port,
      rank,
      clock: this.options.clock,
      requestTimeoutMs: this.options.requestTimeoutMs,
      inflightMax: this.options.inflightMax,
      onClosed: (closed) => {
        if (this.links.get(rank) === closed) this.links.delete(rank);
      },
    });
    this.links.set(rank, link);
    return link.channel;
  }

  refresh(): void {
    const nowUs = this.options.clock.nowUs();
    if (this.fetching || this.closed || nowUs - this.lastFetchUs < refreshIntervalUs) return;
    this.fetching = true;
    this.lastFetchUs = nowUs;
    this.fetch().then(
      (table) => {
        this.fetching = false;
        if (!this.closed) this.apply(table);
      },
      () => {
        // The monitor did not answer; the next refused request asks again.
        this.fetching = false;
      },
    );
  }

  close(): void {
    this.closed = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  /** Takes a routing table: the new map, and connections only to endpoints still listed. */
  private apply(table: RoutingTable): void {
    decodeSlotMap(table.slotMap, this.slotMap);
    const endpoints = new Map(table.endpoints.map((e) => [e.rank, e]));
    for (const [rank, link] of this.links) {
      const e = endpoints.get(rank);
      const old = this.endpoints.get(rank);
      if (e === undefined || old === undefined || e.host !== old.host || e.port !== old.port) {
        this.links.delete(rank);
        link.retire(`KN thread ${rank} left the routing table`);
      }
    }
    this.endpoints = endpoints;
  }
}

/**
 * Connects to a multi-process cluster (`dinomo cluster up`) through its monitor: fetches the
 * routing table, then sends each request straight to the KN thread that owns its key, over that
 * thread's data port. Refused requests (MOVED, TRYAGAIN) are retried after a routing refresh for up
 * to requestTimeoutMs, as in the embedded client; an unanswered write is reported, never retried.
 */
export async function connectRemote(options: RemoteClientOptions): Promise<ClusterClient> {
  const clock = options.clock ?? systemClock;
  const requestTimeoutMs = options.requestTimeoutMs ?? defaultRequestTimeoutMs;
  const {
    link,
    monitor: rn,
    close,
  } = openMonitorLink<RnMessage>({
    node: 'client',
    host: options.host,
    port: options.port,
    secret: options.secret,
    clock,
  });
  const router = new RemoteRouter(
    () =>
      link.ask<RnMessage, RoutingTable>(
        rn,
        (replyTo) => ({ type: 'routing', replyTo }),
        requestTimeoutMs,
      ),
    { clock, requestTimeoutMs, inflightMax: options.inflightMax ?? defaultInflightMax },
  );
  const shutdown = (): void => {
    router.close();
    close();
  };
  try {
    await link.waitUp(requestTimeoutMs);
    await router.load();
  } catch (err) {
    shutdown();
    throw err;
  }
  const client = new EmbeddedClient(router, router.slotMap, {
    clock,
    delayUs: 500,
    retryForUs: requestTimeoutMs * 1000,
  });
  let closed = false;
  const refuse = (): Promise<never> =>
    Promise.reject(new DinomoError('CLOSED', 'the client was closed'));
  return {
    put: (key, value) => (closed ? refuse() : client.put(key, value)),
    get: (key) => (closed ? refuse() : client.get(key)),
    delete: (key) => (closed ? refuse() : client.delete(key)),
    close: () => {
      closed = true;
      shutdown();
      return Promise.resolve();
    },
  };
}
