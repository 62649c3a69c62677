import CRC32C from 'crc-32/crc32c.js';

/**
 * CRC32C (Castagnoli) over `bytes[start, end)`, as an unsigned 32-bit integer. Uses SheetJS's crc-32
 * package (table-driven, works on views of SharedArrayBuffers, no native code).
 */
export function crc32c(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const view = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
  return CRC32C.buf(view, 0) >>> 0;
}
