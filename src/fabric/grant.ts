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

/** A grant as JSON can carry it (bytes as hex, bigints as decimal strings), for a child process. */
export interface FabricGrantJson {
  provider: 'shm' | 'tcp';
  address: string;
  key: string;
  base: string;
  regionBytes: number;
}

export function grantToJson(grant: FabricGrant): FabricGrantJson {
  return {
    provider: grant.provider,
    address: Buffer.from(grant.address).toString('hex'),
    key: String(grant.key),
    base: String(grant.base),
    regionBytes: grant.regionBytes,
  };
}

export function grantFromJson(json: FabricGrantJson): FabricGrant {
  return {
    provider: json.provider,
    address: Buffer.from(json.address, 'hex'),
    key: BigInt(json.key),
    base: BigInt(json.base),
    regionBytes: json.regionBytes,
  };
}
