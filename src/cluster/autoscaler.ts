import { ThreadStat, threadStatsView } from '../kn/thread-stats.js';
import {
  DecisionLog,
  initialPolicyState,
  policyStep,
  summarize,
  type ClientFeedback,
  type DecisionRecord,
  type KnPeriodStats,
  type PolicyInput,
  type PolicyOptions,
  type PolicyState,
} from '../monitor/index.js';
import type { Clock, TimerHandle } from '../time/index.js';

/** What the autoscaler reads and, when allowed, changes. */
export interface AutoscalerDeps {
  clock: Clock;
  statsBuffer: SharedArrayBuffer;
  /** The live KNs and their thread ranks. */
  liveKns(): Array<{ knId: number; ranks: number[] }>;
  addKn(): Promise<{ knId: number }>;
  /** The clients' latencies since the last call (client feedback), or null without clients. */
  takeFeedback(): { ops: number; buckets: Array<{ latencyUs: number; count: number }> } | null;
  removeKn(knId: number): Promise<unknown>;
}

/**
 * The M-node's monitoring loop (DESIGN.md section 8, dinomo-original.md section 6): every decision
 * period it turns the KN threads' counters into per-KN statistics (occupancy is the share of the
 * period a thread spent handling requests), runs the scaling policy (src/monitor/policy.ts) and
 * logs the decision with its inputs and reason. With `act` it also carries the decision out; without
 * it the log shows what the policy would do. Client feedback is the latency of every request the
 * cluster's clients completed, merged into one histogram (so the p99 is a true p99).
 */
export class Autoscaler {
  readonly log = new DecisionLog({ capacity: 1000 });
  private state: PolicyState;
  private previous = new Map<number, Float64Array>();
  private previousUs: number;
  private timer: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly deps: AutoscalerDeps,
    private readonly act: boolean,
    policy: PolicyOptions = {},
  ) {
    const nowUs = deps.clock.nowUs();
    this.state = initialPolicyState(nowUs / 1000, policy);
    this.previousUs = nowUs;
  }

  start(): void {
    this.snapshot();
    const tick = (): void => {
      if (this.stopped) return;
      this.decide();
      this.timer = this.deps.clock.setTimer(this.state.config.decisionPeriodMs * 1000, tick);
    };
    this.timer = this.deps.clock.setTimer(this.state.config.decisionPeriodMs * 1000, tick);
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /** Membership changed (by the policy or by hand): restarts the grace period. */
  note(type: Exclude<PolicyInput, { type: 'stats' }>['type'], knId = 0): void {
    const nowMs = this.deps.clock.nowUs() / 1000;
    const input: PolicyInput = type === 'add-failed' ? { type, nowMs } : { type, nowMs, knId };
    this.state = policyStep(this.state, input).state;
  }

  decisions(): DecisionRecord[] {
    return this.log.entries();
  }

  /** Takes one period's statistics, runs the policy, logs and (with `act`) carries out the decision. */
  decide(): void {
    const nowUs = this.deps.clock.nowUs();
    const kns = this.periodStats(nowUs);
    this.snapshot();
    if (kns.length === 0) return;
    const { state, decisions } = policyStep(this.state, {
      type: 'stats',
      nowMs: nowUs / 1000,
      summary: summarize(kns, this.clientFeedback()),
    });
    this.state = state;
    for (const d of decisions) {
      this.log.append(d);
      if (this.act) this.carryOut(d);
    }
  }

  private clientFeedback(): ClientFeedback[] {
    const f = this.deps.takeFeedback();
    return f === null || f.ops === 0
      ? []
      : [{ clientId: 'embedded', ops: f.ops, buckets: f.buckets }];
  }

  private carryOut(d: DecisionRecord): void {
    if (d.action === 'add') {
      this.deps.addKn().then(
        (r) => this.note('kn-joined', r.knId),
        () => this.note('add-failed'),
      );
    } else if (d.action === 'remove' && d.knId !== undefined) {
      const knId = d.knId;
      this.deps.removeKn(knId).then(
        () => this.note('kn-removed', knId),
        () => this.note('kn-failed', knId),
      );
    }
  }

  private periodStats(nowUs: number): KnPeriodStats[] {
    const periodUs = Math.max(1, nowUs - this.previousUs);
    return this.deps.liveKns().map(({ knId, ranks }) => ({
      knId,
      threads: ranks.map((rank) => {
        const now = threadStatsView(this.deps.statsBuffer, rank);
        const before = this.previous.get(rank);
        const delta = (i: number): number => (now[i] as number) - ((before?.[i] as number) ?? 0);
        const accesses =
          delta(ThreadStat.gets) + delta(ThreadStat.puts) + delta(ThreadStat.deletes);
        const busyUs = delta(ThreadStat.busyUs);
        return {
          occupancy: Math.min(1, busyUs / periodUs),
          accesses,
          valueHits: delta(ThreadStat.valueHits),
          shortcutHits: delta(ThreadStat.shortcutHits),
          logHits: delta(ThreadStat.logHits),
          misses: delta(ThreadStat.misses),
          missCostRts: now[ThreadStat.missCostRts] as number,
          avgHandlerLatencyUs: accesses === 0 ? 0 : busyUs / accesses,
        };
      }),
    }));
  }

  private snapshot(): void {
    this.previousUs = this.deps.clock.nowUs();
    const next = new Map<number, Float64Array>();
    for (const { ranks } of this.deps.liveKns()) {
      for (const rank of ranks) {
        next.set(rank, Float64Array.from(threadStatsView(this.deps.statsBuffer, rank)));
      }
    }
    this.previous = next;
  }
}
