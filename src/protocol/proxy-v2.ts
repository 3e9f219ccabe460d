/**
 * PROXY protocol version 2: a 16-byte binary preamble (signature, version/command,
 * family/transport, payload length), the address block, then optional TLVs.
 */
import { crc32c } from './crc32c.js';
import { formatIPv4, formatIPv6 } from './ip-address.js';
import { ProxyProtocolError, wireAddresses, type ParseStep, type ProxyAddresses, type ProxyHeader, type ProxyTlv } from './proxy-header.js';

const SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
export const V2_PREAMBLE_LENGTH = 16;
/** Default cap on a received v2 header (preamble + payload): roomy for cloud load balancers' TLVs. */
export const V2_DEFAULT_MAX_LENGTH = 2048;
const VERSION_2 = 0x20;
const COMMAND_LOCAL = 0x0;
const COMMAND_PROXY = 0x1;
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;
/** Family/transport bytes the spec defines; anything else must be rejected. */
const KNOWN_FAMILY_BYTES = new Set([0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32]);
/** Address block length by family (high nibble): UNSPEC, INET, INET6, UNIX. */
const ADDRESS_BLOCK_LENGTH = [0, 12, 36, 216];
const TLV_HEADER_LENGTH = 3;
const PP2_TYPE_CRC32C = 0x03;

/** A header with `addresses`, or LOCAL (health checks) when undefined; `tlvs` are appended as given. */
export function encodeV2(addresses: ProxyAddresses | undefined, tlvs: readonly ProxyTlv[] = []): Buffer {
  const wire = addresses === undefined ? undefined : wireAddresses(addresses);
  const ipLength = wire === undefined ? 0 : wire.ipv4 ? 4 : 16;
  const addressLength = wire === undefined ? 0 : 2 * ipLength + 4;
  const tlvLength = tlvs.reduce((sum, tlv) => sum + TLV_HEADER_LENGTH + tlv.value.length, 0);
  const payloadLength = addressLength + tlvLength;
  if (payloadLength > 0xffff) throw new RangeError(`PROXY v2 payload of ${payloadLength} bytes exceeds 65535`);

  const header = Buffer.alloc(V2_PREAMBLE_LENGTH + payloadLength);
  SIGNATURE.copy(header, 0);
  header[12] = VERSION_2 | (wire === undefined ? COMMAND_LOCAL : COMMAND_PROXY);
  header[13] = wire === undefined ? 0x00 : wire.ipv4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6;
  header.writeUInt16BE(payloadLength, 14);
  let offset = V2_PREAMBLE_LENGTH;
  if (wire !== undefined) {
    header.set(wire.source.toByteArray(), offset);
    header.set(wire.destination.toByteArray(), offset + ipLength);
    header.writeUInt16BE(wire.sourcePort, offset + 2 * ipLength);
    header.writeUInt16BE(wire.destinationPort, offset + 2 * ipLength + 2);
    offset += addressLength;
  }
  for (const tlv of tlvs) {
    if (!Number.isInteger(tlv.type) || tlv.type < 0 || tlv.type > 0xff) throw new RangeError(`TLV type ${tlv.type} is not a byte`);
    header[offset] = tlv.type;
    header.writeUInt16BE(tlv.value.length, offset + 1);
    header.set(tlv.value, offset + TLV_HEADER_LENGTH);
    offset += TLV_HEADER_LENGTH + tlv.value.length;
  }
  return header;
}

/**
 * Validates field by field in wire order as bytes arrive (so the verdict does not depend
 * on chunking) and refuses a declared length above `maxLength` before buffering it.
 */
export function parseV2(buffer: Buffer, maxLength: number): ParseStep {
  const signatureLength = Math.min(buffer.length, SIGNATURE.length);
  for (let i = 0; i < signatureLength; i++) {
    if (buffer[i] !== SIGNATURE[i]) throw new ProxyProtocolError('invalid PROXY protocol v2 signature');
  }
  if (buffer.length <= 12) return undefined;
  const versionCommand = buffer[12]!;
  if ((versionCommand & 0xf0) !== VERSION_2) {
    throw new ProxyProtocolError(`unsupported PROXY protocol version ${versionCommand >> 4} in a v2 header`);
  }
  const command = versionCommand & 0x0f;
  if (command !== COMMAND_LOCAL && command !== COMMAND_PROXY) {
    throw new ProxyProtocolError(`unknown PROXY protocol v2 command ${command}`);
  }
  if (buffer.length <= 13) return undefined;
  // LOCAL: the family is to be ignored, whatever it says.
  const family = buffer[13]!;
  if (command === COMMAND_PROXY && !KNOWN_FAMILY_BYTES.has(family)) {
    throw new ProxyProtocolError(`invalid PROXY protocol v2 family/transport byte 0x${family.toString(16).padStart(2, '0')}`);
  }
  if (buffer.length < V2_PREAMBLE_LENGTH) return undefined;
  const length = V2_PREAMBLE_LENGTH + buffer.readUInt16BE(14);
  if (length > maxLength) {
    throw new ProxyProtocolError(`PROXY protocol v2 header of ${length} bytes exceeds the ${maxLength}-byte limit`);
  }
  if (buffer.length < length) return undefined;
  // LOCAL: the receiver must skip the whole block (addresses and TLVs alike) and use the real endpoints.
  if (command === COMMAND_LOCAL) return { header: { version: 2, command: 'local' }, length };

  const addressEnd = V2_PREAMBLE_LENGTH + ADDRESS_BLOCK_LENGTH[family >> 4]!;
  if (addressEnd > length) {
    throw new ProxyProtocolError(`PROXY protocol v2 payload too short for its address block (${length - V2_PREAMBLE_LENGTH} bytes)`);
  }
  const header: ProxyHeader = { version: 2, command: 'proxy' };
  const addresses = decodeAddresses(buffer, family);
  if (addresses !== undefined) header.addresses = addresses;
  if (addressEnd < length) header.tlvs = decodeTlvs(buffer, addressEnd, length);
  return { header, length };
}

/** TCP over IPv4/IPv6 only; UDP, UNIX and UNSPEC fall back to the real endpoints (spec-permitted). */
function decodeAddresses(buffer: Buffer, family: number): ProxyAddresses | undefined {
  const at = V2_PREAMBLE_LENGTH;
  if (family === TCP_OVER_IPV4) {
    return {
      family: 'tcp4',
      source: { address: formatIPv4(buffer, at), port: buffer.readUInt16BE(at + 8) },
      destination: { address: formatIPv4(buffer, at + 4), port: buffer.readUInt16BE(at + 10) },
    };
  }
  if (family === TCP_OVER_IPV6) {
    return {
      family: 'tcp6',
      source: { address: formatIPv6(buffer, at), port: buffer.readUInt16BE(at + 32) },
      destination: { address: formatIPv6(buffer, at + 16), port: buffer.readUInt16BE(at + 34) },
    };
  }
  return undefined;
}

function decodeTlvs(buffer: Buffer, start: number, end: number): ProxyTlv[] {
  const tlvs: ProxyTlv[] = [];
  let offset = start;
  while (offset < end) {
    if (end - offset < TLV_HEADER_LENGTH) throw new ProxyProtocolError('truncated TLV header in PROXY protocol v2 header');
    const type = buffer[offset]!;
    const valueStart = offset + TLV_HEADER_LENGTH;
    const valueEnd = valueStart + buffer.readUInt16BE(offset + 1);
    if (valueEnd > end) throw new ProxyProtocolError(`TLV 0x${type.toString(16)} overruns the PROXY protocol v2 header`);
    if (type === PP2_TYPE_CRC32C) verifyChecksum(buffer, end, valueStart, valueEnd);
    // A copy: the header outlives the read buffer it came in, which may be large.
    tlvs.push({ type, value: Buffer.from(buffer.subarray(valueStart, valueEnd)) });
    offset = valueEnd;
  }
  return tlvs;
}

/** The CRC covers the whole header with the checksum field zeroed. */
function verifyChecksum(buffer: Buffer, headerLength: number, valueStart: number, valueEnd: number): void {
  if (valueEnd - valueStart !== 4) throw new ProxyProtocolError('PROXY protocol v2 CRC32C TLV must be 4 bytes');
  const expected = buffer.readUInt32BE(valueStart);
  const copy = Buffer.from(buffer.subarray(0, headerLength));
  copy.fill(0, valueStart, valueEnd);
  if (crc32c(copy) !== expected) throw new ProxyProtocolError('PROXY protocol v2 CRC32C checksum mismatch');
}
