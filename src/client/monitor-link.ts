import { randomInt } from 'node:crypto';
import {
  ActorSystem,
  TcpLink,
  actorAddress,
  systemAddress,
  type ActorRef,
  type Message,
} from '../actors/index.js';
import { monitorActorName } from '../kn/index.js';
import { monitorSystemLocation } from '../routing/index.js';
import type { Clock } from '../time/index.js';

/** An actor system of its own with a link to the monitor of a multi-process cluster. */
export interface MonitorLink<Msg extends Message> {
  readonly link: TcpLink;
  /** The monitor's actor, typed with the messages the caller sends it. */
  readonly monitor: ActorRef<Msg>;
  close: () => void;
}

/**
 * Opens a link to the monitor at `host:port` from a fresh actor system named `node/<pid>/<random>`
 * (a process may hold several, e.g. several clients). The link reconnects after a monitor restart.
 */
export function openMonitorLink<Msg extends Message>(options: {
  node: string;
  host: string;
  port: number;
  secret: string | Uint8Array;
  clock: Clock;
}): MonitorLink<Msg> {
  const { clock } = options;
  const actors = ActorSystem.start({
    node: options.node,
    process: process.pid,
    thread: randomInt(0x7fff_ffff),
    clock,
  });
  const address = systemAddress(monitorSystemLocation);
  const link = new TcpLink(actors, {
    host: options.host,
    port: options.port,
    secret: options.secret,
    clock,
    expectedPeer: address,
  });
  return {
    link,
    monitor: { address: actorAddress(address, monitorActorName) },
    close: () => {
      link.close();
      actors.stop();
    },
  };
}
