import { DinomoError } from '../errors/index.js';
import { fabricAddon, type NativeFabricServer } from '../util/native-addon.js';
import type { FabricGrant } from './grant.js';
import { callNative as call } from './native-fabric.js';

export interface FabricHostOptions {
  provider: 'shm' | 'tcp';
  /** The address tcp listens on; loopback unless KNs run on other hosts. */
  host?: string;
  /**
   * The progress thread yields the core after each poll (the default), which keeps it from starving
   * KN threads on a small machine; false spins without yielding, for the lowest latency on a host
   * with a core to spare.
   */
  yieldProgress?: boolean;
  /** The highest KN thread rank plus one; ranks outside are refused. */
  rankCount: number;
}

interface RankAccess {
  incarnation: number;
  key: bigint;
}

/**
 * The DPM end of the native fabric: the region registered once per KN thread incarnation, and a
 * native progress thread (the providers here complete one-sided operations only while the target
 * polls). A grant is one registration, so fencing a thread is closing its registration: the target
 * refuses every later access with that key (tcp drops the connection; shm, whose direct-write path
 * the addon turns off for this reason, leaves it uncompleted), and a fenced incarnation gets no new
 * grant.
 */
export class FabricHost {
  readonly provider: 'shm' | 'tcp';
  private readonly server: NativeFabricServer;
  private readonly regionBytes: number;
  private readonly rankCount: number;
  private readonly access = new Map<number, RankAccess>();
  /** Per rank, the lowest incarnation still allowed (fence.ts has the same rule in the region). */
  private readonly minIncarnation = new Map<number, number>();
  private nextKey = 0x1000n;
  private closed = false;

  constructor(region: SharedArrayBuffer, options: FabricHostOptions) {
    if (options.provider !== 'shm' && options.provider !== 'tcp') {
      throw new DinomoError(
        'INVALID_OPTION',
        `fabric provider must be 'shm' or 'tcp', not ${String(options.provider)}`,
      );
    }
    if (!Number.isInteger(options.rankCount) || options.rankCount < 1) {
      throw new DinomoError('INVALID_OPTION', 'rankCount must be a positive integer');
    }
    const addon = fabricAddon();
    this.provider = options.provider;
    this.regionBytes = region.byteLength;
    this.rankCount = options.rankCount;
    this.server = call(
      () =>
        new addon.FabricServer(
          options.provider,
          region,
          options.host ?? '127.0.0.1',
          options.yieldProgress ?? true,
        ),
    );
  }

  /**
   * The grant for `rank` running as `incarnation`: the existing one for the same incarnation, a new
   * registration for a newer one (the older one's is closed). Throws FENCED for a fenced incarnation.
   */
  grant(rank: number, incarnation: number): FabricGrant {
    this.checkOpen();
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.rankCount) {
      throw new DinomoError('INVALID_OPTION', `rank ${rank} is outside 0..${this.rankCount - 1}`);
    }
    if (incarnation < (this.minIncarnation.get(rank) ?? 0)) {
      throw new DinomoError(
        'FENCED',
        `KN thread rank ${rank} incarnation ${incarnation} was fenced; restart it as a new incarnation`,
      );
    }
    let held = this.access.get(rank);
    if (held === undefined || held.incarnation !== incarnation) {
      if (held !== undefined) this.server.revoke(held.key);
      const key = call(() => this.server.grant(this.nextKey++));
      held = { incarnation, key };
      this.access.set(rank, held);
    }
    const info = this.server.describe();
    return {
      provider: this.provider,
      address: info.name,
      key: held.key,
      base: info.base,
      regionBytes: this.regionBytes,
    };
  }

  /**
   * Fences every incarnation of `rank` up to `incarnation`: once this returns, no write of theirs
   * reaches the region, and they get no new grant.
   */
  fence(rank: number, incarnation: number): void {
    this.checkOpen();
    this.minIncarnation.set(rank, Math.max(this.minIncarnation.get(rank) ?? 0, incarnation + 1));
    const held = this.access.get(rank);
    if (held === undefined || held.incarnation > incarnation) return;
    this.server.revoke(held.key);
    this.access.delete(rank);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new DinomoError('CLOSED', 'the fabric host is closed');
  }
}
