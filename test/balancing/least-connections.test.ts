import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/balancing/endpoint.js';
import { LeastConnectionsBalancer } from '../../src/balancing/least-connections.js';
import { makeEndpoints, tally } from './helpers.js';

function setup(weights: number[], maxConnections?: number): { balancer: LeastConnectionsBalancer; endpoints: Endpoint[] } {
  const endpoints = makeEndpoints(weights, maxConnections);
  const balancer = new LeastConnectionsBalancer();
  balancer.setEndpoints(endpoints);
  return { balancer, endpoints };
}

function hold(balancer: LeastConnectionsBalancer, endpoint: Endpoint, count = 1): void {
  endpoint.active += count;
  balancer.loadChanged(endpoint);
}

describe('least connections', { timeout: 10_000 }, () => {
  it('picks the endpoint with the fewest active connections', () => {
    const { balancer, endpoints } = setup([1, 1, 1]);
    const [a, b, c] = endpoints as [Endpoint, Endpoint, Endpoint];
    hold(balancer, a, 5);
    hold(balancer, b, 2);
    hold(balancer, c, 3);
    assert.equal(balancer.pick('10.0.0.1', undefined), b);
    hold(balancer, b, 2); // b: 4
    assert.equal(balancer.pick('10.0.0.1', undefined), c);
    hold(balancer, a, -5); // a: 0
    assert.equal(balancer.pick('10.0.0.1', undefined), a);
  });

  it('breaks ties in turn, not always with the first', () => {
    const { balancer, endpoints } = setup([1, 1, 1]);
    const picked = Array.from({ length: 9 }, () => balancer.pick('10.0.0.1', undefined));
    assert.deepEqual(tally(endpoints, picked), [3, 3, 3]);
    assert.deepEqual(picked.slice(0, 3), endpoints);
  });

  it('fills endpoints in proportion to weight when connections are held', () => {
    const { balancer, endpoints } = setup([1, 3]);
    for (let i = 0; i < 40; i++) hold(balancer, balancer.pick('10.0.0.1', undefined)!);
    assert.deepEqual(
      endpoints.map((e) => e.active),
      [10, 30],
    );
  });

  it('sends new connections to the endpoint that got its connections released', () => {
    const { balancer, endpoints } = setup([1, 1, 1, 1]);
    for (let i = 0; i < 8; i++) hold(balancer, balancer.pick('10.0.0.1', undefined)!);
    const released = endpoints[2]!;
    hold(balancer, released, -2);
    assert.equal(balancer.pick('10.0.0.1', undefined), released);
    hold(balancer, released);
    assert.equal(balancer.pick('10.0.0.1', undefined), released);
  });

  it('skips full, excluded, down and draining endpoints, then takes them back', () => {
    const { balancer, endpoints } = setup([1, 1, 1, 1], 2);
    const [a, b, c, d] = endpoints as [Endpoint, Endpoint, Endpoint, Endpoint];
    hold(balancer, d, 2); // full, though weight-wise it's still the least loaded after the others fill
    c.state = 'down';
    balancer.stateChanged(c);
    b.state = 'draining';
    balancer.stateChanged(b);
    assert.equal(balancer.pick('10.0.0.1', undefined), a);
    assert.equal(balancer.pick('10.0.0.1', new Set([a])), undefined);
    hold(balancer, a, 2);
    assert.equal(balancer.pick('10.0.0.1', undefined), undefined);
    c.state = 'healthy';
    balancer.stateChanged(c);
    assert.equal(balancer.pick('10.0.0.1', undefined), c);
    hold(balancer, d, -1);
    assert.deepEqual(
      Array.from({ length: 4 }, () => balancer.pick('10.0.0.1', new Set([c]))),
      [d, d, d, d],
    );
  });

  it('ignores load reports for endpoints it no longer has', () => {
    const { balancer, endpoints } = setup([1, 1]);
    const gone = makeEndpoints([1])[0]!;
    hold(balancer, gone, 3);
    balancer.setEndpoints(endpoints.slice(1));
    hold(balancer, endpoints[0]!, 1);
    assert.equal(balancer.pick('10.0.0.1', undefined), endpoints[1]);
  });
});
