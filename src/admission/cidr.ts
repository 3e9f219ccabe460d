/**
 * Access-list entries: an IPv4 or IPv6 CIDR, or a bare address (a /32 or /128).
 * Parsing is strict, because a typo in an access list silently changes who may
 * connect: four decimal octets for IPv4 (no octal-looking leading zeros, no short
 * forms), no zone index, a prefix length within the family's range. Host bits set
 * below the prefix (`10.1.2.3/8`) are accepted and ignored, as nginx and HAProxy do.
 */
import { requireCommonJs } from '../deps/commonjs.js';
import { parseDottedQuad } from '../net/address.js';

const ipaddr = requireCommonJs('ipaddr.js');

/** The inclusive address range a rule covers. IPv6 bounds are bigints (built once, at parse time). */
export type CidrRange = { family: 4; first: number; last: number } | { family: 6; first: bigint; last: bigint };

/** Either the range, or why the text is not a CIDR. */
export type CidrParse = CidrRange | { problem: string };

const PREFIX_DIGITS = /^\d{1,3}$/;

/**
 * IPv6 rules inside ::ffff:0:0/96 (written as mapped IPv4) are stored as the IPv4 rule
 * they mean, so they match IPv4 clients whichever way those connect.
 */
const MAPPED_V4_PREFIX_BITS = 96;

export function parseCidr(text: string): CidrParse {
  if (text.length === 0) return { problem: 'empty entry' };
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  let prefix: number | undefined;
  if (slash >= 0) {
    const digits = text.slice(slash + 1);
    if (!PREFIX_DIGITS.test(digits)) return { problem: `prefix length "${digits}" is not a number` };
    prefix = Number(digits);
  }

  const v4 = parseDottedQuad(address, 0);
  if (v4 >= 0) {
    prefix ??= 32;
    if (prefix > 32) return { problem: `prefix length ${prefix} is out of range 0-32 for IPv4` };
    return ipv4Range(v4, prefix);
  }

  if (address.includes('%')) return { problem: 'a zone index (%...) is not allowed' };
  if (!address.includes(':') || !ipaddr.IPv6.isValid(address) || !hasStrictEmbeddedIpv4(address)) {
    return { problem: `"${address}" is not an IPv4 or IPv6 address` };
  }
  prefix ??= 128;
  if (prefix > 128) return { problem: `prefix length ${prefix} is out of range 0-128 for IPv6` };
  const parsed = ipaddr.IPv6.parse(address);
  if (prefix >= MAPPED_V4_PREFIX_BITS && parsed.isIPv4MappedAddress()) {
    const [a, b, c, d] = parsed.toIPv4Address().octets as [number, number, number, number];
    return ipv4Range(((a * 256 + b) * 256 + c) * 256 + d, prefix - MAPPED_V4_PREFIX_BITS);
  }
  let value = 0n;
  for (const part of parsed.parts) value = (value << 16n) | BigInt(part);
  const hostMask = (1n << BigInt(128 - prefix)) - 1n;
  const first = value & ~hostMask;
  return { family: 6, first, last: first | hostMask };
}

/** Why `text` is not a CIDR or address, or undefined when it is one (for config validation). */
export function cidrProblem(text: string): string | undefined {
  const parsed = parseCidr(text);
  return 'problem' in parsed ? parsed.problem : undefined;
}

function ipv4Range(address: number, prefix: number): CidrRange {
  const size = 2 ** (32 - prefix);
  const first = address - (address % size);
  return { family: 4, first, last: first + size - 1 };
}

/** ipaddr.js accepts `::ffff:010.1.2.3`; hold the embedded IPv4 to the same rule as plain IPv4. */
function hasStrictEmbeddedIpv4(address: string): boolean {
  if (!address.includes('.')) return true;
  return parseDottedQuad(address, address.lastIndexOf(':') + 1) >= 0;
}
