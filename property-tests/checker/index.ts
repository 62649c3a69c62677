export type { OpKind, OpStatus, Operation } from './history.js';
export {
  checkHistory,
  type CheckOptions,
  type CheckResult,
  type KeyResult,
  type Verdict,
} from './checker.js';
export {
  describeOperation,
  formatWitness,
  type Witness,
  type WitnessKind,
  type WitnessStep,
} from './witness.js';
export {
  fromEvents,
  parseJsonLines,
  toEvents,
  toJsonLines,
  type EventType,
  type HistoryEvent,
} from './history-format.js';
