import type { BalanceStrategy } from '../src/balancing/balancer.js';
import { createBalancer } from '../src/balancing/create-balancer.js';
import { Endpoint } from '../src/balancing/endpoint.js';

/** Connections held at once in the simulation: picks see endpoints with varying load. */
const HELD = 64;
const CLIENTS = 1024;

/**
 * Nanoseconds per connection spent balancing with `endpoints` endpoints (weights 1..3):
 * pick, plus the load updates of acquire and release that least_connections keeps its
 * heap with. Client IPs vary (source_hash) and HELD connections stay open at any time.
 */
export function benchmarkPick(strategy: BalanceStrategy, endpoints: number, iterations: number): number {
  const pool = Array.from(
    { length: endpoints },
    (_, i) =>
      new Endpoint(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 9000, {
        upstream: `upstream-${i}:9000`,
        weight: 1 + (i % 3),
      }),
  );
  const clients = Array.from({ length: CLIENTS }, (_, i) => `192.168.${i >> 8}.${i & 255}`);
  const balancer = createBalancer(strategy);
  balancer.setEndpoints(pool);
  const held: Endpoint[] = [];
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const endpoint = balancer.pick(clients[i % CLIENTS]!, undefined)!;
      endpoint.active++;
      balancer.loadChanged(endpoint);
      held.push(endpoint);
      if (held.length > HELD) {
        const done = held.shift()!;
        done.active--;
        balancer.loadChanged(done);
      }
    }
  };
  run(Math.min(iterations, 20_000)); // warm-up: let the JIT optimise first
  const start = process.hrtime.bigint();
  run(iterations);
  return Number(process.hrtime.bigint() - start) / iterations;
}
