declare module 'crc-32/crc32c.js' {
  /** CRC32C of a byte array, as a signed 32-bit integer. */
  export function buf(data: Uint8Array, seed?: number): number;
  const CRC32C: { buf: typeof buf };
  export default CRC32C;
}
