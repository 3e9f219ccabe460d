/**
 * Client addresses as the admission rules see them.
 *
 * A dual-stack listener (`[::]`) reports IPv4 clients as IPv4-mapped IPv6 addresses
 * (`::ffff:10.1.2.3`). They are the same client as `10.1.2.3`, so every rule (access
 * list, rate limit, per-IP limit) works on the IPv4 form.
 */
import ipaddr from 'ipaddr.js';

export type AddressFamily = 4 | 6;

/** `::ffff:a.b.c.d` in the dotted form Node.js uses for `socket.remoteAddress`. */
const MAPPED_PREFIX = '::ffff:';

/**
 * The key that identifies one client across rules: the IPv4 form of an IPv4-mapped
 * address, otherwise the address as given (Node.js already reports canonical text).
 */
export function canonicalClientIp(ip: string): string {
  if (hasMappedPrefix(ip)) {
    const v4 = ip.slice(MAPPED_PREFIX.length);
    if (parseDottedQuad(v4, 0) >= 0) return v4;
  }
  return ip;
}

/** Case-insensitive `startsWith('::ffff:')` without allocating a lowered copy. */
function hasMappedPrefix(ip: string): boolean {
  if (ip.length < MAPPED_PREFIX.length) return false;
  for (let i = 0; i < MAPPED_PREFIX.length; i++) {
    const c = ip.charCodeAt(i);
    const lower = c >= 65 && c <= 90 ? c + 32 : c;
    if (lower !== MAPPED_PREFIX.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A strict dotted-quad IPv4 parser: four decimal octets 0-255, no leading zeros (which
 * some tools read as octal), nothing else. Returns the address as an unsigned 32-bit
 * number, or -1. Hand-written because it runs once per connection and is several
 * times faster than ipaddr.js; test/admission/client-address.test.ts checks it
 * against ipaddr.js.
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

/**
 * Parses a client address into `words`: for IPv4, words[0] holds the address; for
 * IPv6, words[0..3] hold the 128 bits, most significant first. IPv4-mapped IPv6
 * addresses come back as IPv4. A zone index (`fe80::1%eth0`) is ignored. Returns the
 * family, or undefined when the text is not an address. Writing into a caller-owned
 * buffer keeps per-connection lookups free of allocation.
 */
export function parseClientAddress(text: string, words: Uint32Array): AddressFamily | undefined {
  const v4 = parseDottedQuad(text, 0);
  if (v4 >= 0) {
    words[0] = v4;
    return 4;
  }
  if (!text.includes(':')) return undefined;
  if (hasMappedPrefix(text)) {
    const mapped = parseDottedQuad(text, MAPPED_PREFIX.length);
    if (mapped >= 0) {
      words[0] = mapped;
      return 4;
    }
  }
  let parts: number[];
  try {
    parts = ipaddr.IPv6.parse(text).parts;
  } catch {
    return undefined;
  }
  if (parts[0] === 0 && parts[1] === 0 && parts[2] === 0 && parts[3] === 0 && parts[4] === 0 && parts[5] === 0xffff) {
    words[0] = (parts[6]! * 0x10000 + parts[7]!) >>> 0;
    return 4;
  }
  for (let w = 0; w < 4; w++) words[w] = (parts[2 * w]! * 0x10000 + parts[2 * w + 1]!) >>> 0;
  return 6;
}
