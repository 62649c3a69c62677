/**
 * The deterministic simulator (issue 3): one thread, virtual time, seeded randomness, a simulated
 * network and a simulated DPM with crashes and torn writes, running the real KN, DPM manager, merge
 * and client code through their injected interfaces. property-tests/ drives it with generated
 * scenarios and checks the recorded histories for linearizability.
 */
export { Simulation, type RunLimits } from './event-loop.js';
export {
  SimNetwork,
  type NetworkOptions,
  type DelayWindow,
  type PartitionWindow,
} from './sim-network.js';
export {
  SimDpm,
  dpmNode,
  type CrashPoint,
  type SimDpmOptions,
  type SimDpmStats,
} from './sim-dpm.js';
export { SimFabric } from './sim-fabric.js';
export { SimCluster, clientNode, knNode, type SimClusterOptions } from './sim-cluster.js';
export { SimMonitor, monitorNode, type MoveRecord } from './sim-monitor.js';
