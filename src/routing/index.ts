/** Slot hashing (CRC16 with hash tags, as Redis Cluster) and slot maps. */
export { slotOfKey, evenSlotMap } from './slot.js';
export { planAddThread, planAddThreads, planRemoveThread, type SlotMove } from './slot-moves.js';
export {
  decodeSlotMap,
  encodeSlotMap,
  monitorSystemLocation,
  type KnEndpoint,
  type RnMessage,
  type RoutingTable,
} from './rn-protocol.js';
