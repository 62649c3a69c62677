/**
 * A KN thread's right to reach the DPM region over the native fabric, handed out by the DPM (see
 * fabric-host.ts) and carried on the control channel as plain data.
 */
export interface FabricGrant {
  provider: 'shm' | 'tcp';
  /** The DPM endpoint's address (opaque bytes: a sockaddr for tcp, an `fi_shm://` name for shm). */
  address: Uint8Array;
  /** The memory registration key of this thread's incarnation; revoking it is the fence. */
  key: bigint;
  /** Added to a region offset to form the remote address (the region's address, or 0). */
  base: bigint;
  regionBytes: number;
}
