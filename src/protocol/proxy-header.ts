/**
 * The PROXY protocol header model shared by the v1 (text) and v2 (binary) codecs, and the
 * address normalisation both encoders apply.
 * Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */
import type { Socket } from 'node:net';
import { parseIpForWire, toIPv6, type ParsedIp } from './ip-address.js';
import { TcpProxyError } from '../errors/errors.js';

export interface ProxyEndpoint {
  address: string;
  port: number;
}

export interface ProxyAddresses {
  family: 'tcp4' | 'tcp6';
  source: ProxyEndpoint;
  destination: ProxyEndpoint;
}

/** A v2 Type-Length-Value extension, passed through uninterpreted. */
export interface ProxyTlv {
  type: number;
  value: Buffer;
}

/**
 * A received header. `addresses` is absent when the sender did not relay a TCP connection
 * (v2 LOCAL, v1 UNKNOWN, v2 UNSPEC/UNIX/UDP): the receiver then uses the socket's own
 * endpoints, as the specification asks.
 */
export interface ProxyHeader {
  version: 1 | 2;
  command: 'proxy' | 'local';
  addresses?: ProxyAddresses;
  tlvs?: ProxyTlv[];
}

export type ProxyAccept = 'v1' | 'v2' | 'any';

/** Every rejection of a received header: malformed, unexpected version, too long, incomplete. */
export class ProxyProtocolError extends TcpProxyError {
  constructor(message: string) {
    super('proxy_protocol', message);
  }
}

/** One parse attempt over the bytes received so far: undefined while more are needed. */
export type ParseStep = { header: ProxyHeader; length: number } | undefined;

/** Addresses as they go on the wire: both IPv4, or both IPv6 with IPv4 ends mapped. */
export interface WireAddresses {
  ipv4: boolean;
  source: ParsedIp;
  destination: ParsedIp;
  sourcePort: number;
  destinationPort: number;
}

/**
 * TCP4 when both ends are IPv4 or IPv4-mapped (a dual-stack listener reports v4 clients as
 * `::ffff:a.b.c.d`), TCP6 otherwise. Throws TypeError on an invalid address or port.
 */
export function wireAddresses(addresses: ProxyAddresses): WireAddresses {
  const source = parseIpForWire(addresses.source.address);
  const destination = parseIpForWire(addresses.destination.address);
  const sourcePort = checkPort(addresses.source.port);
  const destinationPort = checkPort(addresses.destination.port);
  if (source.kind() === 'ipv4' && destination.kind() === 'ipv4') {
    return { ipv4: true, source, destination, sourcePort, destinationPort };
  }
  return { ipv4: false, source: toIPv6(source), destination: toIPv6(destination), sourcePort, destinationPort };
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`not a TCP port: ${port}`);
  return port;
}

/**
 * The addresses of a directly accepted connection, for the header sent upstream; undefined
 * when the socket no longer knows them (closed), in which case encoders send UNKNOWN/LOCAL.
 */
export function addressesFromSocket(socket: Socket): ProxyAddresses | undefined {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (remoteAddress === undefined || remotePort === undefined || localAddress === undefined || localPort === undefined) {
    return undefined;
  }
  return {
    family: socket.remoteFamily === 'IPv6' ? 'tcp6' : 'tcp4',
    source: { address: remoteAddress, port: remotePort },
    destination: { address: localAddress, port: localPort },
  };
}
