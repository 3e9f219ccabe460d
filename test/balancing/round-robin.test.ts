import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RoundRobinBalancer } from '../../src/balancing/round-robin.js';
import { makeEndpoints, tally } from './helpers.js';
import type { Endpoint } from '../../src/balancing/endpoint.js';

function picks(balancer: RoundRobinBalancer, count: number, exclude?: ReadonlySet<Endpoint>): (Endpoint | undefined)[] {
  return Array.from({ length: count }, () => balancer.pick('10.0.0.1', exclude));
}

describe('round robin', { timeout: 10_000 }, () => {
  it('rotates equal weights in configuration order', () => {
    const endpoints = makeEndpoints([1, 1, 1]);
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints);
    const labels = picks(balancer, 6).map((e) => e?.label);
    assert.deepEqual(labels, ['127.0.0.1:9000', '127.0.0.2:9000', '127.0.0.3:9000', '127.0.0.1:9000', '127.0.0.2:9000', '127.0.0.3:9000']);
  });

  it('gives weights 1:3 exactly 1 and 3 in every window of 4, interleaved', () => {
    const endpoints = makeEndpoints([1, 3]);
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints);
    const picked = picks(balancer, 400);
    for (let window = 0; window < 100; window++) {
      assert.deepEqual(tally(endpoints, picked.slice(window * 4, window * 4 + 4)), [1, 3], `window ${window}`);
    }
    // Smooth: the light endpoint comes back every 4th pick, not in a burst (B A B B, as nginx's A A B A).
    assert.deepEqual(picked.slice(0, 4), [endpoints[1], endpoints[0], endpoints[1], endpoints[1]]);
    const lightAt = picked.flatMap((e, i) => (e === endpoints[0] ? [i] : []));
    assert.ok(lightAt.every((at, i) => i === 0 || at === lightAt[i - 1]! + 4));
  });

  it('keeps exact proportions for uneven weights (5:1:1 and 2:3:7 over each cycle)', () => {
    for (const weights of [
      [5, 1, 1],
      [2, 3, 7],
    ]) {
      const endpoints = makeEndpoints(weights);
      const balancer = new RoundRobinBalancer();
      balancer.setEndpoints(endpoints);
      const cycle = weights.reduce((a, b) => a + b, 0);
      for (let round = 0; round < 50; round++) assert.deepEqual(tally(endpoints, picks(balancer, cycle)), weights);
    }
  });

  it('skips down, draining, full and excluded endpoints and shares their turns among the rest', () => {
    const endpoints = makeEndpoints([1, 1, 1, 1], 1);
    const [a, b, c, d] = endpoints as [Endpoint, Endpoint, Endpoint, Endpoint];
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints);
    a.state = 'down';
    balancer.stateChanged(a);
    b.state = 'draining';
    balancer.stateChanged(b);
    c.active = 1; // at max_connections
    assert.deepEqual(picks(balancer, 3), [d, d, d]);
    assert.equal(balancer.pick('10.0.0.1', new Set([d])), undefined);
    c.active = 0;
    assert.deepEqual(tally(endpoints, picks(balancer, 10)), [0, 0, 5, 5]);
    assert.deepEqual(picks(balancer, 3, new Set([c])), [d, d, d]);
  });

  it('lets an endpoint that comes back rejoin without a burst of missed turns', () => {
    const endpoints = makeEndpoints([1, 1]);
    const [a, b] = endpoints as [Endpoint, Endpoint];
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints);
    a.state = 'down';
    balancer.stateChanged(a);
    picks(balancer, 100);
    a.state = 'healthy';
    balancer.stateChanged(a);
    const after = picks(balancer, 10);
    assert.deepEqual(tally(endpoints, after), [5, 5]);
    assert.notDeepEqual(after.slice(0, 2), [a, a]);
    assert.ok(after.includes(b));
  });

  it('alternates at once when an endpoint returns with its next turn due exactly now', () => {
    // The failover path: a is picked, fails, is ejected; b serves that client and the next;
    // a's turn then falls due at the current virtual time. It must not take two in a row.
    const endpoints = makeEndpoints([1, 1]);
    const [a, b] = endpoints as [Endpoint, Endpoint];
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints);
    assert.equal(balancer.pick('10.0.0.1', undefined), a);
    a.state = 'down';
    balancer.stateChanged(a);
    assert.equal(balancer.pick('10.0.0.1', new Set([a])), b);
    assert.equal(balancer.pick('10.0.0.1', undefined), b);
    a.state = 'healthy';
    balancer.stateChanged(a);
    assert.deepEqual(picks(balancer, 4), [a, b, a, b]);
  });

  it('keeps the rotation of surviving endpoints across setEndpoints and includes new ones', () => {
    const endpoints = makeEndpoints([1, 1, 1]);
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints.slice(0, 2));
    picks(balancer, 3);
    balancer.setEndpoints(endpoints);
    assert.deepEqual(tally(endpoints, picks(balancer, 30)), [10, 10, 10]);
    balancer.setEndpoints([]);
    assert.equal(balancer.pick('10.0.0.1', undefined), undefined);
  });

  it('stays exact after virtual time has been rebased (2^24 picks)', () => {
    const endpoints = makeEndpoints([1, 3]);
    const [light, heavy] = endpoints as [Endpoint, Endpoint];
    const balancer = new RoundRobinBalancer();
    balancer.setEndpoints(endpoints);
    heavy.state = 'down';
    balancer.stateChanged(heavy);
    // Alone with weight 1, the light endpoint advances virtual time by 1 per pick.
    for (let i = 0; i < 2 ** 24 + 10; i++) assert.equal(balancer.pick('10.0.0.1', undefined), light);
    heavy.state = 'healthy';
    balancer.stateChanged(heavy);
    for (let window = 0; window < 50; window++) assert.deepEqual(tally(endpoints, picks(balancer, 4)), [1, 3]);
  });
});
