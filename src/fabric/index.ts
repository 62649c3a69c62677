/**
 * The fabric: one-sided read, write, cas64 and faa64 on region offsets, with RT and byte counters.
 * Embedded mode uses LocalFabric (direct SharedArrayBuffer access); the native libfabric and the
 * simulated fabric implement the same interface.
 */
export { newFabricCounters, type Fabric, type FabricCounters } from './fabric.js';
export { LocalFabric } from './local-fabric.js';
export { currentIncarnation, enterFenced, fenceRank, leaveFenced } from './fence.js';
export { NativeFabric, type NativeFabricOptions } from './native-fabric.js';
export { FabricHost, type FabricHostOptions } from './fabric-host.js';
export { grantFromJson, grantToJson, type FabricGrant, type FabricGrantJson } from './grant.js';
