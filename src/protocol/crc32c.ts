/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as RFC 4960 appendix B defines it:
 * the checksum a PROXY v2 header may carry in its PP2_TYPE_CRC32C TLV. node:zlib only has
 * the IEEE CRC-32, hence this table-driven version.
 */
const TABLE = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
