/**
 * IP address text <-> wire form for the PROXY protocol codecs.
 *
 * Decoded addresses are written the way Node writes `socket.remoteAddress` (dotted quad,
 * RFC 5952 IPv6, IPv4-mapped as `::ffff:a.b.c.d`), so an address learnt from a header
 * compares equal to the one the proxy would have seen on a direct connection.
 */
import { isIPv4, isIPv6, SocketAddress } from 'node:net';
import type { IPv4, IPv6 } from 'ipaddr.js';
import { requireCommonJs } from '../deps/commonjs.js';

const ipaddr = requireCommonJs('ipaddr.js');

export type ParsedIp = IPv4 | IPv6;

/**
 * Parses an address for encoding; IPv4-mapped IPv6 comes back as IPv4 so that callers can
 * pick TCP4 when both ends are really IPv4. Throws TypeError: a bad address here is a bug
 * in the caller, not bad input from the network.
 */
export function parseIpForWire(text: string): ParsedIp {
  if (isIPv4(text) || isIPv6(text)) return ipaddr.process(text);
  throw new TypeError(`not an IP address: ${JSON.stringify(text)}`);
}

/** The address as IPv6 (IPv4 becomes `::ffff:a.b.c.d`). */
export function toIPv6(ip: ParsedIp): IPv6 {
  return ip.kind() === 'ipv4' ? (ip as IPv4).toIPv4MappedAddress() : (ip as IPv6);
}

/** Node's canonical text of a valid IPv6 address (zone identifiers are not accepted). */
export function canonicalIPv6(text: string): string | undefined {
  if (text.includes('%') || !isIPv6(text)) return undefined;
  return new SocketAddress({ address: text, family: 'ipv6' }).address;
}

export function formatIPv4(bytes: Buffer, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

export function formatIPv6(bytes: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(offset + i).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}
