/**
 * PROXY protocol version 1: one US-ASCII line, at most 107 bytes including its CRLF.
 *   PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n
 *   PROXY UNKNOWN\r\n
 */
import { isIPv4 } from 'node:net';
import { canonicalIPv6 } from './ip-address.js';
import { ProxyProtocolError, wireAddresses, type ParseStep, type ProxyAddresses, type ProxyEndpoint } from './proxy-header.js';

export const V1_MAX_LENGTH = 107;
const SIGNATURE = Buffer.from('PROXY ', 'latin1');
const UNKNOWN_LINE = Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
// Ports are decimal without leading zeros (the specification forbids them: octal confusion).
const PORT_TEXT = /^(?:0|[1-9][0-9]{0,4})$/;

export function encodeV1(addresses: ProxyAddresses | undefined): Buffer {
  if (addresses === undefined) return Buffer.from(UNKNOWN_LINE);
  const wire = wireAddresses(addresses);
  const protocol = wire.ipv4 ? 'TCP4' : 'TCP6';
  // ipaddr.js prints RFC 5952 hex groups (mapped IPv4 included): the form the spec describes.
  const line = `PROXY ${protocol} ${wire.source.toString()} ${wire.destination.toString()} ${wire.sourcePort} ${wire.destinationPort}\r\n`;
  return Buffer.from(line, 'latin1');
}

/**
 * Checks are made in byte order on whatever has arrived, so a bad header is refused as soon
 * as it is visibly bad and the verdict never depends on how the bytes were chunked.
 */
export function parseV1(buffer: Buffer): ParseStep {
  const signatureLength = Math.min(buffer.length, SIGNATURE.length);
  for (let i = 0; i < signatureLength; i++) {
    if (buffer[i] !== SIGNATURE[i]) throw new ProxyProtocolError('invalid PROXY protocol v1 signature');
  }
  const lineEnd = findLineEnd(buffer);
  if (lineEnd === undefined) return undefined;
  const fields = buffer.toString('latin1', SIGNATURE.length, lineEnd).split(' ');
  const length = lineEnd + 2;
  const protocol = fields[0];
  // The receiver must ignore whatever follows UNKNOWN and use the real connection endpoints.
  if (protocol === 'UNKNOWN') return { header: { version: 1, command: 'local' }, length };
  if (protocol !== 'TCP4' && protocol !== 'TCP6') {
    throw new ProxyProtocolError(`unsupported PROXY protocol v1 protocol ${JSON.stringify(protocol)}`);
  }
  if (fields.length !== 5) {
    throw new ProxyProtocolError(`PROXY protocol v1 ${protocol} line needs 4 single-space separated fields`);
  }
  const family = protocol === 'TCP4' ? 'tcp4' : 'tcp6';
  const source = endpoint(family, fields[1]!, fields[3]!, 'source');
  const destination = endpoint(family, fields[2]!, fields[4]!, 'destination');
  return { header: { version: 1, command: 'proxy', addresses: { family, source, destination } }, length };
}

/** Index of the terminating CR, undefined while incomplete; throws on bad bytes or length. */
function findLineEnd(buffer: Buffer): number | undefined {
  const limit = Math.min(buffer.length, V1_MAX_LENGTH);
  for (let i = SIGNATURE.length; i < limit; i++) {
    const byte = buffer[i]!;
    if (byte === CR) {
      if (i + 2 > V1_MAX_LENGTH) throw tooLong();
      if (i + 1 === buffer.length) return undefined;
      if (buffer[i + 1] !== LF) throw new ProxyProtocolError('PROXY protocol v1 line has a CR without LF');
      return i;
    }
    // Printable US-ASCII only; a bare LF lands here too (a lone CR or LF must not end the line).
    if (byte < 0x20 || byte > 0x7e) {
      throw new ProxyProtocolError(`invalid byte 0x${byte.toString(16).padStart(2, '0')} in PROXY protocol v1 line`);
    }
  }
  if (buffer.length < V1_MAX_LENGTH) return undefined;
  throw tooLong();
}

function tooLong(): ProxyProtocolError {
  return new ProxyProtocolError(`PROXY protocol v1 line longer than ${V1_MAX_LENGTH} bytes`);
}

function endpoint(family: 'tcp4' | 'tcp6', addressText: string, portText: string, side: string): ProxyEndpoint {
  // Node's isIPv4 is the spec's strict dotted quad: no leading zeros, no short forms.
  const address = family === 'tcp4' ? (isIPv4(addressText) ? addressText : undefined) : canonicalIPv6(addressText);
  if (address === undefined) {
    throw new ProxyProtocolError(`invalid PROXY protocol v1 ${side} address ${JSON.stringify(addressText)} for ${family.toUpperCase()}`);
  }
  const port = PORT_TEXT.test(portText) ? Number(portText) : NaN;
  if (!(port <= 65535)) throw new ProxyProtocolError(`invalid PROXY protocol v1 ${side} port ${JSON.stringify(portText)}`);
  return { address, port };
}
