/**
 * The one place that knows every strategy: the strategies and their interface
 * (balancer.ts) do not import each other.
 */
import type { Balancer, BalanceStrategy } from './balancer.js';
import { LeastConnectionsBalancer } from './least-connections.js';
import { RandomBalancer } from './random.js';
import { RoundRobinBalancer } from './round-robin.js';
import { SourceHashBalancer } from './source-hash.js';

/** `random` is the source of randomness of the `random` strategy (tests pass a seeded one). */
export function createBalancer(strategy: BalanceStrategy, random: () => number = Math.random): Balancer {
  switch (strategy) {
    case 'round_robin':
      return new RoundRobinBalancer();
    case 'least_connections':
      return new LeastConnectionsBalancer();
    case 'random':
      return new RandomBalancer(random);
    case 'source_hash':
      return new SourceHashBalancer();
  }
}
