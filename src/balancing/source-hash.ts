import type { Balancer } from './balancer.js';
import { canTake, type Endpoint } from './endpoint.js';
import { hashString, mix32 } from './hash.js';
import { buildMaglevTable, maglevTableSize } from './maglev-table.js';
import { unmapIPv4 } from '../net/address.js';

const CLIENT_SEED = 0x5bd1e995;
/** Table probes before falling back to a scan (only when nearly every endpoint is out). */
const MAX_PROBES = 64;

/**
 * Consistent hashing on the client IP with a Maglev lookup table over all endpoints of
 * the pool, healthy or not. A client's IP fixes a probe sequence through the table
 * (double hashing: start slot and step both from the IP; the table size is prime, so the
 * sequence visits every slot); the client goes to the first endpoint on it that can take
 * a connection. Hence:
 *   - the same IP goes to the same endpoint while that endpoint is healthy;
 *   - when an endpoint goes down (or drains, or is full) only its own clients move, spread
 *     over the others in proportion to their shares, and they come back when it does;
 *   - membership changes (DNS, reload) rebuild the table, which Maglev keeps close to
 *     minimal disruption (a few percent beyond the leaving/joining share);
 *   - retries (exclude) continue along the same sequence, so they are deterministic too.
 * O(1) per pick: one hash of the IP and usually one table read.
 */
export class SourceHashBalancer implements Balancer {
  private endpoints: readonly Endpoint[] = [];
  /** The weights the table was built with (endpoints are shared objects: a reload changes theirs in place). */
  private weights: readonly number[] = [];
  private table: Int32Array = new Int32Array(0);

  setEndpoints(endpoints: readonly Endpoint[]): void {
    const weights = endpoints.map((endpoint) => endpoint.weight);
    if (sameMembers(this.endpoints, endpoints) && weights.every((weight, i) => weight === this.weights[i])) return;
    this.endpoints = endpoints.slice();
    this.weights = weights;
    this.table = buildMaglevTable(
      endpoints.map((endpoint) => endpoint.label),
      weights,
      maglevTableSize(endpoints.length),
    );
  }

  stateChanged(_endpoint: Endpoint): void {
    // State is read at pick time: the table stays put, which is what keeps clients sticky.
  }

  loadChanged(_endpoint: Endpoint): void {
    // Load is read at pick time (max_connections).
  }

  pick(clientIp: string, exclude: ReadonlySet<Endpoint> | undefined): Endpoint | undefined {
    const endpoints = this.endpoints;
    if (endpoints.length === 0) return undefined;
    const table = this.table;
    const size = table.length;
    const hash = hashString(unmapIPv4(clientIp), CLIENT_SEED);
    const step = (mix32(hash ^ CLIENT_SEED) % (size - 1)) + 1;
    let slot = hash % size;
    for (let probe = 0; probe < MAX_PROBES; probe++) {
      const endpoint = endpoints[table[slot]!]!;
      if (canTake(endpoint, exclude)) return endpoint;
      slot = (slot + step) % size;
    }
    // Nearly everything is out: a scan from an IP-determined start is still deterministic.
    const count = endpoints.length;
    const start = hash % count;
    for (let i = 0; i < count; i++) {
      const endpoint = endpoints[(start + i) % count]!;
      if (canTake(endpoint, exclude)) return endpoint;
    }
    return undefined;
  }
}

function sameMembers(current: readonly Endpoint[], next: readonly Endpoint[]): boolean {
  return current.length === next.length && current.every((endpoint, i) => endpoint === next[i]);
}
