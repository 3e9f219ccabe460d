import { hashString } from './hash.js';

const OFFSET_SEED = 0x2545f491;
const SKIP_SEED = 0x9e3779b9;

// Primes; the table should hold about 100 entries per endpoint or more, which keeps
// the shares within ~1% of the weights (Maglev paper, section 5.3).
const TABLE_SIZES = [4093, 16381, 65521, 262139, 1048573] as const;

/** The smallest table size with about 100 entries per endpoint (capped at ~1M entries). */
export function maglevTableSize(endpointCount: number): number {
  return TABLE_SIZES.find((size) => size >= endpointCount * 100) ?? TABLE_SIZES[TABLE_SIZES.length - 1]!;
}

/**
 * Maglev's lookup table (Eisenbud et al., NSDI 2016): entry j names the endpoint (an index
 * into `keys`) that owns hash slot j. Each endpoint walks its own permutation of the slots,
 * derived from its key, and claims the next free one in turn; weights are honoured by
 * giving each endpoint `weight / maxWeight` claims per round. Built in ~size * ln(size)
 * steps; a lookup is then one array read. `size` must be prime so that every skip
 * generates a full permutation.
 */
export function buildMaglevTable(keys: readonly string[], weights: readonly number[], size: number): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const count = keys.length;
  if (count === 0) return table;
  const position = new Float64Array(count);
  const skip = new Float64Array(count);
  const credit = new Float64Array(count);
  keys.forEach((key, i) => {
    position[i] = hashString(key, OFFSET_SEED) % size;
    skip[i] = (hashString(key, SKIP_SEED) % (size - 1)) + 1;
  });
  const maxWeight = Math.max(...weights);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < count; i++) {
      credit[i] = credit[i]! + weights[i]!;
      while (credit[i]! >= maxWeight) {
        credit[i] = credit[i]! - maxWeight;
        let slot = position[i]!;
        while (table[slot]! >= 0) slot = (slot + skip[i]!) % size;
        table[slot] = i;
        position[i] = (slot + skip[i]!) % size;
        if (++filled === size) return table;
      }
    }
  }
}
