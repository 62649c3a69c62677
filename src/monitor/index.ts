/** The M-node: reconfiguration as pure step functions (policies and failure detection follow). */
export {
  initialReconfigState,
  reconfigStep,
  type ReconfigInput,
  type ReconfigOutput,
  type ReconfigState,
} from './reconfiguration.js';
