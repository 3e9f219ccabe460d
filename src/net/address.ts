/**
 * Addresses as text: `HOST:PORT` parsing and formatting, and IPv4-mapped IPv6 unmapping.
 * The one home of these helpers: logs, metrics, the admin API, the config and the
 * admission rules all show and compare addresses the same way.
 */
import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,62})(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,62}))*\.?$/;

/**
 * Parses `1.2.3.4:80`, `[::1]:80` or `name:80`. Returns a message saying what is wrong
 * instead of throwing, so that the schema can attach it to the right key path.
 */
export function parseHostPort(text: string, { allowPortZero = false } = {}): HostPort | string {
  const expected = `expected HOST:PORT, got ${JSON.stringify(text)}`;
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return expected;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) return `expected an IPv6 address inside brackets, got ${JSON.stringify(text)}`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return expected;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return `IPv6 addresses need brackets ([::1]:PORT), got ${JSON.stringify(text)}`;
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) return `invalid host in ${JSON.stringify(text)}`;
  }
  if (!/^\d{1,5}$/.test(portText)) return expected;
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !allowPortZero)) return `port out of range in ${JSON.stringify(text)}`;
  return { host, port };
}

/**
 * The canonical "ip:port" label, brackets around IPv6 (what logs, metrics and the admin
 * API show). Neither a host name nor an IPv4 address contains a colon, so the test is a
 * character search rather than isIP(): this runs once per connection.
 */
export function formatHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `::ffff:a.b.c.d` in the dotted form Node.js uses for `socket.remoteAddress`. */
const MAPPED_PREFIX = '::ffff:';

/**
 * A dual-stack listener (`[::]`) reports IPv4 clients as IPv4-mapped IPv6 addresses
 * (`::ffff:10.1.2.3`): they are the IPv4 client `10.1.2.3`, which is the form every rule
 * (access list, limits, source hash) and the logs use. Anything else comes back as given
 * (Node.js already reports canonical text).
 */
export function unmapIPv4(ip: string): string {
  if (hasMappedPrefix(ip)) {
    const v4 = ip.slice(MAPPED_PREFIX.length);
    if (parseDottedQuad(v4, 0) >= 0) return v4;
  }
  return ip;
}

/** Case-insensitive `startsWith('::ffff:')` without allocating a lowered copy. */
export function hasMappedPrefix(ip: string): boolean {
  if (ip.length < MAPPED_PREFIX.length) return false;
  for (let i = 0; i < MAPPED_PREFIX.length; i++) {
    const c = ip.charCodeAt(i);
    const lower = c >= 65 && c <= 90 ? c + 32 : c;
    if (lower !== MAPPED_PREFIX.charCodeAt(i)) return false;
  }
  return true;
}

/** Where the dotted quad starts in an IPv4-mapped address. */
export const MAPPED_PREFIX_LENGTH = MAPPED_PREFIX.length;

/**
 * A strict dotted-quad IPv4 parser: four decimal octets 0-255, no leading zeros (which
 * some tools read as octal), nothing else. Returns the address as an unsigned 32-bit
 * number, or -1. Hand-written because it runs once per connection and is several
 * times faster than ipaddr.js; test/net/address.test.ts checks it against ipaddr.js.
 */
export function parseDottedQuad(text: string, start: number): number {
  let value = 0;
  let octets = 0;
  let i = start;
  const end = text.length;
  while (octets < 4) {
    const first = i;
    let octet = 0;
    while (i < end) {
      const digit = text.charCodeAt(i) - 48;
      if (digit < 0 || digit > 9) break;
      octet = octet * 10 + digit;
      i++;
    }
    const digits = i - first;
    if (digits === 0 || digits > 3 || octet > 255 || (digits > 1 && text.charCodeAt(first) === 48)) return -1;
    value = value * 256 + octet;
    octets++;
    if (octets < 4) {
      if (text.charCodeAt(i) !== 46 /* . */) return -1;
      i++;
    }
  }
  return i === end ? value : -1;
}
