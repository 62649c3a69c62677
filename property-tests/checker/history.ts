/**
 * The history vocabulary shared by the simulator harness, the real-threads smoke test, the checker
 * and the JSON-lines export (docs/history-format.md). Jepsen/Knossos semantics: every operation has
 * an invocation and a completion; `ok` happened, `fail` definitely did not happen, `info` is
 * indeterminate (it may take effect at any point after its invocation, or never).
 */
export type OpKind = 'get' | 'put' | 'delete';
export type OpStatus = 'ok' | 'fail' | 'info';

/** One client operation, invocation and completion together. */
export interface Operation {
  /** Unique within the history. */
  id: number;
  /** The logical client process. A process that saw `info` never issues another operation. */
  process: number;
  f: OpKind;
  key: string;
  /**
   * put: the value written (unique per key across the history). get: the value read when `ok`
   * (null = the key was absent), null otherwise. delete: null.
   */
  value: string | null;
  /** delete with status ok: whether the key existed. Null for every other operation. */
  existed: boolean | null;
  /** Invocation time, monotonic nanoseconds. */
  call: number;
  /** Completion time, monotonic nanoseconds, ≥ call. For `info` the time the client gave up. */
  ret: number;
  status: OpStatus;
}
