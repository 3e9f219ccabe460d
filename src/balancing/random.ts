import type { Balancer } from './balancer.js';
import { canTake, lighter, type Endpoint } from './endpoint.js';

/** Rounds of two draws before giving up on luck and scanning (when most are full/excluded). */
const DRAW_ROUNDS = 4;

/**
 * Power of two random choices: draw two healthy endpoints with probability proportional to
 * weight and take the one with less load relative to weight. Without load this spreads in
 * proportion to weight; with load it avoids the busy ones without the herd effect of
 * least_connections across many proxies. O(log n) per pick (binary search on the weights).
 */
export class RandomBalancer implements Balancer {
  private endpoints: readonly Endpoint[] = [];
  private healthy: Endpoint[] = [];
  /** cumulativeWeight[i] = sum of the weights of healthy[0..i]. */
  private cumulativeWeight = new Float64Array(0);

  constructor(private readonly random: () => number) {}

  setEndpoints(endpoints: readonly Endpoint[]): void {
    this.endpoints = endpoints;
    this.indexHealthy();
  }

  stateChanged(_endpoint: Endpoint): void {
    // Health changes are rare: rebuilding the O(n) index beats keeping it incrementally.
    this.indexHealthy();
  }

  loadChanged(_endpoint: Endpoint): void {
    // Load is read at pick time.
  }

  pick(_clientIp: string, exclude: ReadonlySet<Endpoint> | undefined): Endpoint | undefined {
    if (this.healthy.length === 0) return undefined;
    for (let round = 0; round < DRAW_ROUNDS; round++) {
      const a = this.draw();
      const b = this.draw();
      const takeA = canTake(a, exclude);
      const takeB = canTake(b, exclude);
      if (takeA && takeB) return lighter(b, a) ? b : a;
      if (takeA) return a;
      if (takeB) return b;
    }
    let best: Endpoint | undefined;
    for (const endpoint of this.healthy) {
      if (canTake(endpoint, exclude) && (best === undefined || lighter(endpoint, best))) best = endpoint;
    }
    return best;
  }

  private draw(): Endpoint {
    const cumulative = this.cumulativeWeight;
    const target = this.random() * cumulative[cumulative.length - 1]!;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (cumulative[middle]! > target) high = middle;
      else low = middle + 1;
    }
    return this.healthy[low]!;
  }

  private indexHealthy(): void {
    this.healthy = this.endpoints.filter((endpoint) => endpoint.state === 'healthy');
    this.cumulativeWeight = new Float64Array(this.healthy.length);
    let sum = 0;
    this.healthy.forEach((endpoint, index) => {
      sum += endpoint.weight;
      this.cumulativeWeight[index] = sum;
    });
  }
}
