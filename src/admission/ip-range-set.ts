/**
 * A set of address ranges answering "is this address in any of them?" by binary search.
 *
 * Rules are turned into inclusive ranges, sorted and merged (overlapping or adjacent
 * ranges become one), so a lookup is one binary search over disjoint ranges:
 * O(log n), about 17 steps for 100,000 rules, whatever their overlap. The ranges live
 * in typed arrays (IPv6 bounds as four 32-bit words each, most significant first) so
 * a lookup allocates nothing and 100,000 rules take a few megabytes.
 */
import type { AddressFamily } from './client-address.js';
import type { CidrRange } from './cidr.js';

export class IpRangeSet {
  readonly #starts4: Uint32Array;
  readonly #ends4: Uint32Array;
  readonly #starts6: Uint32Array;
  readonly #ends6: Uint32Array;

  private constructor(starts4: Uint32Array, ends4: Uint32Array, starts6: Uint32Array, ends6: Uint32Array) {
    this.#starts4 = starts4;
    this.#ends4 = ends4;
    this.#starts6 = starts6;
    this.#ends6 = ends6;
  }

  static from(ranges: readonly CidrRange[]): IpRangeSet {
    // Bigints for both families: one merge routine, run once per access list.
    const v4: [bigint, bigint][] = [];
    const v6: [bigint, bigint][] = [];
    for (const range of ranges) {
      if (range.family === 4) v4.push([BigInt(range.first), BigInt(range.last)]);
      else v6.push([range.first, range.last]);
    }
    const merged4 = mergeRanges(v4);
    const merged6 = mergeRanges(v6);
    const starts4 = new Uint32Array(merged4.length);
    const ends4 = new Uint32Array(merged4.length);
    merged4.forEach(([first, last], i) => {
      starts4[i] = Number(first);
      ends4[i] = Number(last);
    });
    const starts6 = new Uint32Array(merged6.length * 4);
    const ends6 = new Uint32Array(merged6.length * 4);
    merged6.forEach(([first, last], i) => {
      writeWords(starts6, i, first);
      writeWords(ends6, i, last);
    });
    return new IpRangeSet(starts4, ends4, starts6, ends6);
  }

  get isEmpty(): boolean {
    return this.#starts4.length === 0 && this.#starts6.length === 0;
  }

  /** Disjoint ranges after merging, per family (for tests and diagnostics). */
  get rangeCount(): { ipv4: number; ipv6: number } {
    return { ipv4: this.#starts4.length, ipv6: this.#starts6.length / 4 };
  }

  /** `words` as filled by parseClientAddress: words[0] for IPv4, words[0..3] for IPv6. */
  contains(family: AddressFamily, words: Uint32Array): boolean {
    return family === 4 ? this.#contains4(words[0]!) : this.#contains6(words);
  }

  #contains4(address: number): boolean {
    const starts = this.#starts4;
    // The last range starting at or before the address is the only one that can hold it.
    let low = 0;
    let high = starts.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (starts[mid]! <= address) low = mid + 1;
      else high = mid;
    }
    return low > 0 && address <= this.#ends4[low - 1]!;
  }

  #contains6(words: Uint32Array): boolean {
    const starts = this.#starts6;
    let low = 0;
    let high = starts.length / 4;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareWords(starts, mid, words) <= 0) low = mid + 1;
      else high = mid;
    }
    return low > 0 && compareWords(this.#ends6, low - 1, words) >= 0;
  }
}

/** Sorts by start and merges inclusive ranges that overlap or touch. */
function mergeRanges(ranges: [bigint, bigint][]): [bigint, bigint][] {
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const merged: [bigint, bigint][] = [];
  for (const [first, last] of ranges) {
    const current = merged[merged.length - 1];
    if (current !== undefined && first <= current[1] + 1n) {
      if (last > current[1]) current[1] = last;
    } else {
      merged.push([first, last]);
    }
  }
  return merged;
}

function writeWords(table: Uint32Array, index: number, value: bigint): void {
  for (let w = 3; w >= 0; w--) {
    table[index * 4 + w] = Number(value & 0xffffffffn);
    value >>= 32n;
  }
}

/** Sign of table[index] - words, comparing 128-bit values word by word. */
function compareWords(table: Uint32Array, index: number, words: Uint32Array): number {
  const base = index * 4;
  for (let w = 0; w < 4; w++) {
    const difference = table[base + w]! - words[w]!;
    if (difference !== 0) return difference;
  }
  return 0;
}
