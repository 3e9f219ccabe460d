/**
 * Client addresses as the admission rules see them.
 *
 * A dual-stack listener (`[::]`) reports IPv4 clients as IPv4-mapped IPv6 addresses
 * (`::ffff:10.1.2.3`). They are the same client as `10.1.2.3`, so every rule (access
 * list, rate limit, per-IP limit) works on the IPv4 form (net/address.ts unmapIPv4).
 */
import { requireCommonJs } from '../deps/commonjs.js';
import { hasMappedPrefix, MAPPED_PREFIX_LENGTH, parseDottedQuad } from '../net/address.js';

const ipaddr = requireCommonJs('ipaddr.js');

export type AddressFamily = 4 | 6;

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
    const mapped = parseDottedQuad(text, MAPPED_PREFIX_LENGTH);
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
