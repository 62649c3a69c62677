/**
 * The benchmark harness: Zipf and latest keys, YCSB-style workloads, the load, closed-loop and
 * open-loop runners, reports, the demo.
 */
export type {
  BenchClient,
  BenchCluster,
  BenchClusterClass,
  BenchClusterOptions,
  BenchKey,
  BenchMode,
  BenchStats,
  BenchTarget,
  BenchValue,
  ElasticCluster,
  ElasticClusterClass,
  KnChangeReport,
} from './types.js';
export {
  ZipfGenerator,
  LatestGenerator,
  KeyPermutation,
  buildZipfCdf,
  keyName,
  defaultKeyPrefix,
  maxZipfKeys,
  type LatestOptions,
  type ZipfOptions,
} from './zipf.js';
export { ValueFactory, readValueStamp, type ValueStamp } from './values.js';
export {
  Workload,
  workloadPresets,
  workloadNames,
  workloadSpec,
  resolveWorkloadSpec,
  requestDistributions,
  isWorkloadName,
  type BenchOp,
  type OpKind,
  type OpSource,
  type RequestDistribution,
  type ResolvedWorkloadSpec,
  type WorkloadName,
  type WorkloadOverrides,
  type WorkloadPreset,
  type WorkloadSpec,
} from './workload.js';
export { createLatencyHistogram, summarizeLatency, type LatencySummary } from './histogram.js';
export type { TimelinePoint } from './timeline.js';
export {
  loadKeys,
  runWorkload,
  runOpenLoop,
  type LoadOptions,
  type LoadResult,
  type OpenLoopOptions,
  type OpenLoopResult,
  type RunOptions,
  type RunOpCounts,
  type RunProgress,
  type RunResult,
} from './runner.js';
export {
  buildReport,
  diffStats,
  formatReport,
  formatTimeline,
  type BenchConfig,
  type BenchReport,
  type HitRatio,
  type StatsDelta,
} from './report.js';
export { runDemo, demoDefaults, type DemoIo, type DemoOptions, type DemoProgress } from './demo.js';
export {
  runBench,
  benchDefaults,
  benchModes,
  benchClusterOptions,
  benchTimelineChart,
  formatBenchReport,
  keyOrders,
  median,
  type BenchIo,
  type BenchLoop,
  type BenchRepetition,
  type BenchRunConfig,
  type BenchRunOptions,
  type BenchRunReport,
  type KeyOrder,
} from './bench-run.js';
export {
  StatsTimeline,
  formatBenchTimeline,
  formatTable,
  type BenchTimelinePoint,
} from './stats-timeline.js';
export {
  TriggerSession,
  type KnCommand,
  type LoadCommand,
  type PlainCommand,
  type RunCommand,
  type SleepCommand,
  type TriggerCommand,
  type TriggerIo,
  type TriggerOptions,
  type TriggerOutcome,
  type WarmCommand,
  type WarmRunCommand,
} from './trigger.js';
export {
  detectDips,
  dipDefaults,
  type Dip,
  type DipEvent,
  type DipOptions,
  type DipSample,
  type EventDips,
} from './dips.js';
export {
  runPaper,
  checkModesStart,
  checkPaperOptions,
  modelScaling,
  eventLabel,
  elasticSecondEvents,
  paperDefaults,
  paperModelAssumptions,
  paperNetworks,
  type ElasticRun,
  type ElasticSecondEvent,
  type PaperIo,
  type PaperOptions,
  type PaperResult,
  type PaperRun,
  type ScalingModel,
  type ScalingResult,
} from './paper.js';
export {
  upsertMarkedSection,
  paperSection,
  paperSectionBegin,
  paperSectionEnd,
  scalingChart,
  elasticChart,
  formatPaperSummary,
  mdTable,
  type PaperMeta,
} from './paper-report.js';
