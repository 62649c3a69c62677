/** The M-node: reconfiguration and the scaling policies as pure step functions, and the decision log. */
export {
  initialReconfigState,
  reconfigStep,
  type MergeFence,
  type ReconfigInput,
  type ReconfigOutput,
  type ReconfigState,
  type SlotFence,
} from './reconfiguration.js';
export {
  FailureDetector,
  type FailureDetectorOptions,
  type HeartbeatAnswer,
} from './failure-detector.js';
export {
  defaultPolicyOptions,
  fillPolicyOptions,
  initialPolicyState,
  mergedPercentile,
  policyStep,
  summarize,
  type ClientFeedback,
  type DecisionInputs,
  type DecisionRecord,
  type KnPeriodStats,
  type KnSummary,
  type LatencyBucket,
  type PolicyAction,
  type PolicyConfig,
  type PolicyInput,
  type PolicyOptions,
  type PolicyState,
  type StatsSummary,
  type ThreadPeriodStats,
} from './policy.js';
export {
  DecisionLog,
  formatLine,
  parseDecisionJsonLines,
  type DecisionLogOptions,
} from './decision-log.js';
