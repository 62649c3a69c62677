import { DinomoError } from '../errors/index.js';

/**
 * Addresses are plain strings so that they survive cbor-x and postMessage unchanged: a system is
 * `node/process/thread` and an actor is `node/process/thread/actor`. Segments use a small character
 * set (a subset of what nact accepts as an actor name) so that `/` is always a separator.
 */
const segmentPattern = /^[A-Za-z0-9._-]+$/;

/** Where an actor system runs: one per thread. */
export interface SystemLocation {
  readonly node: string;
  readonly process: string | number;
  readonly thread: string | number;
}

export function isValidSegment(segment: string): boolean {
  return segment.length <= 128 && segmentPattern.test(segment);
}

function checkSegment(segment: string, what: string): string {
  if (!isValidSegment(segment)) {
    throw new DinomoError(
      'INVALID_OPTION',
      `${what} '${segment}' must be 1 to 128 characters from A-Z a-z 0-9 . _ -`,
    );
  }
  return segment;
}

/** The address of the actor system at `location`, `node/process/thread`. */
export function systemAddress(location: SystemLocation): string {
  const node = checkSegment(location.node, 'node');
  const proc = checkSegment(String(location.process), 'process');
  const thread = checkSegment(String(location.thread), 'thread');
  return `${node}/${proc}/${thread}`;
}

/** The address of actor `name` in the system at `system` (a system address). */
export function actorAddress(system: string, name: string): string {
  return `${system}/${checkSegment(name, 'actor name')}`;
}

/** Splits an actor address into its system address and actor name; throws INVALID_OPTION if malformed. */
export function splitAddress(address: string): { system: string; actor: string } {
  const parts = address.split('/');
  if (parts.length !== 4 || !parts.every(isValidSegment)) {
    throw new DinomoError(
      'INVALID_OPTION',
      `'${address}' is not an actor address node/process/thread/actor`,
    );
  }
  const cut = address.lastIndexOf('/');
  return { system: address.slice(0, cut), actor: address.slice(cut + 1) };
}

/** True if `address` is a well-formed system address `node/process/thread`. */
export function isSystemAddress(address: string): boolean {
  const parts = address.split('/');
  return parts.length === 3 && parts.every(isValidSegment);
}
