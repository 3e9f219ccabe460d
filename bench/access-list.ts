/**
 * Access-list lookup benchmark, and the random rule sets it shares with the tests.
 *
 * Rules look like real block lists: IPv4 prefixes /16-/32, IPv6 /32-/128, half of each
 * family. Lookups mix addresses inside rules, on their edges and just outside, random
 * ones, and IPv4-mapped IPv6, so both hits and misses are timed.
 */
import ipaddr from 'ipaddr.js';
import { AccessList } from '../src/admission/access-list.js';

export type Random = () => number;

/** A small seeded PRNG (mulberry32): benchmarks and tests repeat exactly. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomInt(random: Random, low: number, high: number): number {
  return low + Math.floor(random() * (high - low + 1));
}

function randomBytes(random: Random, count: number): number[] {
  return Array.from({ length: count }, () => randomInt(random, 0, 255));
}

/** Keeps the first `prefix` bits of `bytes` and takes the rest from `hostByte()`. */
function withHostBits(bytes: readonly number[], prefix: number, hostByte: () => number): number[] {
  return bytes.map((byte, i) => {
    const networkBits = Math.min(8, Math.max(0, prefix - i * 8));
    const hostMask = 0xff >> networkBits;
    return (byte & ~hostMask & 0xff) | (hostByte() & hostMask);
  });
}

const zeros = (): number => 0;
const ones = (): number => 0xff;

function addressText(bytes: number[]): string {
  return ipaddr.fromByteArray(bytes).toString();
}

/** `count` CIDRs, half IPv4 and half IPv6, written as networks (no host bits set). */
export function randomCidrs(count: number, random: Random): string[] {
  return Array.from({ length: count }, (_, i) => {
    const v4 = i % 2 === 0;
    const prefix = v4 ? randomInt(random, 16, 32) : randomInt(random, 32, 128);
    const network = withHostBits(randomBytes(random, v4 ? 4 : 16), prefix, zeros);
    return `${addressText(network)}/${prefix}`;
  });
}

/**
 * `count` client addresses as Node.js would report them, many of them inside or at
 * the edges of `cidrs` (first and last address, and one past either side).
 */
export function randomAddresses(count: number, cidrs: readonly string[], random: Random): string[] {
  return Array.from({ length: count }, () => {
    const kind = randomInt(random, 0, 5);
    if (kind === 0 || cidrs.length === 0) return addressText(randomBytes(random, random() < 0.5 ? 4 : 16));
    const [network, prefix] = ipaddr.parseCIDR(cidrs[randomInt(random, 0, cidrs.length - 1)]!);
    const bytes = network.toByteArray();
    let chosen: number[];
    if (kind === 1) chosen = withHostBits(bytes, prefix, zeros);
    else if (kind === 2) chosen = withHostBits(bytes, prefix, ones);
    else if (kind === 3) chosen = step(withHostBits(bytes, prefix, zeros), -1);
    else if (kind === 4) chosen = step(withHostBits(bytes, prefix, ones), 1);
    else chosen = withHostBits(bytes, prefix, () => randomInt(random, 0, 255));
    const text = addressText(chosen);
    return chosen.length === 4 && random() < 0.2 ? `::ffff:${text}` : text;
  });
}

/** The address `delta` (+1 or -1) away, wrapping around the address space. */
function step(bytes: number[], delta: 1 | -1): number[] {
  const result = [...bytes];
  for (let i = result.length - 1; i >= 0; i--) {
    result[i] = (result[i]! + delta + 256) % 256;
    if (result[i] !== (delta === 1 ? 0 : 255)) break;
  }
  return result;
}

/**
 * Builds an access list of `ruleCount` CIDRs (as `deny`) and times `lookups` calls of
 * allows(); returns nanoseconds per lookup.
 */
export function benchmarkAccessList(ruleCount: number, lookups: number): number {
  const random = seededRandom(ruleCount);
  const cidrs = randomCidrs(ruleCount, random);
  const list = AccessList.parse(undefined, cidrs);
  const addresses = randomAddresses(Math.min(lookups, 10_000), cidrs, random);
  for (const address of addresses) list.allows(address); // warm-up: let the JIT settle
  const started = process.hrtime.bigint();
  for (let i = 0; i < lookups; i++) list.allows(addresses[i % addresses.length]!);
  return Number(process.hrtime.bigint() - started) / lookups;
}
