/**
 * Synthesized Ethernet/IPv4-or-IPv6/TCP frames for the capture file: what a sniffer on the
 * wire would have seen, with correct IP and TCP checksums (so tools that validate them
 * do not flag every packet). No options, a fixed window: enough for Wireshark's TCP
 * analysis and "Follow TCP stream".
 */
import type { IPv4, IPv6 } from 'ipaddr.js';
import { requireCommonJs } from '../deps/commonjs.js';

const ipaddr = requireCommonJs('ipaddr.js');

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

const ETHERNET_HEADER = 14;
const IPV4_HEADER = 20;
const IPV6_HEADER = 40;
const TCP_HEADER = 20;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const PROTOCOL_TCP = 6;
const WINDOW = 0xffff;

/** One side of a synthesized TCP conversation. */
export interface FrameEndpoint {
  readonly mac: Buffer;
  /** 4 bytes (IPv4) or 16 bytes (IPv6); both ends of a conversation have the same family. */
  readonly ip: Buffer;
  readonly port: number;
}

export interface TcpSegment {
  readonly from: FrameEndpoint;
  readonly to: FrameEndpoint;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  /** IPv4 identification (ignored for IPv6). */
  readonly ipId: number;
  readonly payload?: Buffer | undefined;
}

/**
 * The two IPs of a conversation as same-family byte arrays: IPv4 when both are IPv4 (an
 * IPv4-mapped IPv6 address counts as IPv4), otherwise IPv6 (IPv4 ones mapped). An address
 * that does not parse (a socket already closed) becomes the unspecified address.
 */
export function conversationAddresses(a: string, b: string): [Buffer, Buffer] {
  const parsedA = parseAddress(a);
  const parsedB = parseAddress(b);
  if (parsedA.kind() === 'ipv4' && parsedB.kind() === 'ipv4') {
    return [Buffer.from(parsedA.toByteArray()), Buffer.from(parsedB.toByteArray())];
  }
  return [Buffer.from(asIPv6(parsedA).toByteArray()), Buffer.from(asIPv6(parsedB).toByteArray())];
}

function parseAddress(text: string): IPv4 | IPv6 {
  return ipaddr.isValid(text) ? ipaddr.process(text) : ipaddr.IPv4.parse('0.0.0.0');
}

function asIPv6(address: IPv4 | IPv6): IPv6 {
  return address.kind() === 'ipv6' ? (address as IPv6) : (address as IPv4).toIPv4MappedAddress();
}

/**
 * Encodes one frame after `headroom` bytes left free for the caller (the pcap record
 * header), so that a record is a single buffer.
 */
export function encodeTcpFrame(headroom: number, segment: TcpSegment): Buffer {
  const { from, to, payload } = segment;
  const v4 = from.ip.length === 4;
  const ipHeader = v4 ? IPV4_HEADER : IPV6_HEADER;
  const payloadLength = payload?.length ?? 0;
  const tcpLength = TCP_HEADER + payloadLength;
  const frame = Buffer.allocUnsafe(headroom + ETHERNET_HEADER + ipHeader + tcpLength);

  let at = headroom;
  to.mac.copy(frame, at);
  from.mac.copy(frame, at + 6);
  frame.writeUInt16BE(v4 ? ETHERTYPE_IPV4 : ETHERTYPE_IPV6, at + 12);
  at += ETHERNET_HEADER;

  const ipStart = at;
  if (v4) {
    frame.writeUInt8(0x45, at); // version 4, header length 5 words
    frame.writeUInt8(0, at + 1);
    frame.writeUInt16BE(IPV4_HEADER + tcpLength, at + 2);
    frame.writeUInt16BE(segment.ipId & 0xffff, at + 4);
    frame.writeUInt16BE(0x4000, at + 6); // don't fragment
    frame.writeUInt8(64, at + 8); // TTL
    frame.writeUInt8(PROTOCOL_TCP, at + 9);
    frame.writeUInt16BE(0, at + 10);
    from.ip.copy(frame, at + 12);
    to.ip.copy(frame, at + 16);
    frame.writeUInt16BE(checksum(sum16(frame, ipStart, ipStart + IPV4_HEADER, 0)), at + 10);
  } else {
    frame.writeUInt32BE(0x60000000, at); // version 6, no traffic class or flow label
    frame.writeUInt16BE(tcpLength, at + 4);
    frame.writeUInt8(PROTOCOL_TCP, at + 6);
    frame.writeUInt8(64, at + 7); // hop limit
    from.ip.copy(frame, at + 8);
    to.ip.copy(frame, at + 24);
  }
  at += ipHeader;

  const tcpStart = at;
  frame.writeUInt16BE(from.port, at);
  frame.writeUInt16BE(to.port, at + 2);
  frame.writeUInt32BE(segment.seq >>> 0, at + 4);
  frame.writeUInt32BE(segment.flags & TCP_ACK ? segment.ack >>> 0 : 0, at + 8);
  frame.writeUInt8((TCP_HEADER / 4) << 4, at + 12);
  frame.writeUInt8(segment.flags, at + 13);
  frame.writeUInt16BE(WINDOW, at + 14);
  frame.writeUInt16BE(0, at + 16);
  frame.writeUInt16BE(0, at + 18);
  if (payload) payload.copy(frame, at + TCP_HEADER);

  // The pseudo-header: both addresses, the protocol and the TCP length.
  let sum = sum16(from.ip, 0, from.ip.length, 0);
  sum = sum16(to.ip, 0, to.ip.length, sum);
  sum += PROTOCOL_TCP + tcpLength;
  sum = sum16(frame, tcpStart, tcpStart + tcpLength, sum);
  frame.writeUInt16BE(checksum(sum), tcpStart + 16);
  return frame;
}

/** Adds the big-endian 16-bit words of buffer[start, end) to `sum` (ones' complement, unfolded). */
function sum16(buffer: Buffer, start: number, end: number, sum: number): number {
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buffer[i]! << 8) | buffer[i + 1]!;
  if (i < end) sum += buffer[i]! << 8;
  return sum;
}

function checksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}
