import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/balancing/endpoint.js';
import { RandomBalancer } from '../../src/balancing/random.js';
import { seededRandom } from '../../bench/access-list.js';
import { makeEndpoints, tally } from './helpers.js';

describe('random (power of two choices)', { timeout: 10_000 }, () => {
  it('takes the less loaded (relative to weight) of the two it draws', () => {
    const endpoints = makeEndpoints([1, 1]);
    const [a, b] = endpoints as [Endpoint, Endpoint];
    // draws: a then b (0.1 -> a, 0.9 -> b)
    const draws = [0.1, 0.9, 0.9, 0.1];
    const balancer = new RandomBalancer(() => draws.shift()!);
    balancer.setEndpoints(endpoints);
    a.active = 3;
    b.active = 1;
    assert.equal(balancer.pick('10.0.0.1', undefined), b);
    a.active = 0;
    assert.equal(balancer.pick('10.0.0.1', undefined), a);
  });

  it('spreads in proportion to weight when nothing is held (1:3, 20,000 picks, seeded)', () => {
    const endpoints = makeEndpoints([1, 3]);
    const balancer = new RandomBalancer(seededRandom(42));
    balancer.setEndpoints(endpoints);
    const counts = tally(
      endpoints,
      Array.from({ length: 20_000 }, () => balancer.pick('10.0.0.1', undefined)),
    );
    const share = counts[0]! / 20_000;
    assert.ok(Math.abs(share - 0.25) < 0.02, `light share ${share}`);
  });

  it('keeps held connections balanced far better than chance (100 endpoints, 10,000 held)', () => {
    const endpoints = makeEndpoints(Array.from({ length: 100 }, () => 1));
    const balancer = new RandomBalancer(seededRandom(7));
    balancer.setEndpoints(endpoints);
    for (let i = 0; i < 10_000; i++) balancer.pick('10.0.0.1', undefined)!.active++;
    const loads = endpoints.map((e) => e.active);
    // One random choice spreads 100 +- ~25 (max ~130); two choices keep it within a few of 100.
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 6, `loads ${Math.min(...loads)}..${Math.max(...loads)}`);
  });

  it('finds the one endpoint that can take a connection among many that cannot', () => {
    const endpoints = makeEndpoints(
      Array.from({ length: 50 }, () => 1),
      1,
    );
    const balancer = new RandomBalancer(seededRandom(1));
    balancer.setEndpoints(endpoints);
    for (const endpoint of endpoints) endpoint.active = 1;
    const free = endpoints[37]!;
    free.active = 0;
    assert.equal(balancer.pick('10.0.0.1', undefined), free);
    assert.equal(balancer.pick('10.0.0.1', new Set([free])), undefined);
    free.state = 'down';
    balancer.stateChanged(free);
    assert.equal(balancer.pick('10.0.0.1', undefined), undefined);
  });

  it('never draws down or draining endpoints', () => {
    const endpoints = makeEndpoints([5, 1, 5]);
    const [a, b, c] = endpoints as [Endpoint, Endpoint, Endpoint];
    const balancer = new RandomBalancer(seededRandom(3));
    balancer.setEndpoints(endpoints);
    a.state = 'down';
    c.state = 'draining';
    balancer.stateChanged(a);
    balancer.stateChanged(c);
    assert.deepEqual(
      tally(
        endpoints,
        Array.from({ length: 100 }, () => balancer.pick('10.0.0.1', undefined)),
      ),
      [0, 100, 0],
    );
    assert.equal(b.state, 'healthy');
  });
});
