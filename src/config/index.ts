/** Options, defaults and hard limits. */
export * from './limits.js';
export {
  fillOptions,
  defaultOptions,
  rankCountMax,
  clusterModes,
  type ClusterMode,
  type ClusterOptions,
  type FilledOptions,
} from './options.js';
export { mutantNames, type MutantName, type Mutants } from './mutants.js';
