import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/balancing/endpoint.js';
import { buildMaglevTable, maglevTableSize } from '../../src/balancing/maglev-table.js';
import { SourceHashBalancer } from '../../src/balancing/source-hash.js';
import { makeEndpoints, tally } from './helpers.js';

const clients = Array.from({ length: 1000 }, (_, i) => `10.${i >> 8}.${i & 255}.${(i * 7) & 255}`);

function route(balancer: SourceHashBalancer, ips = clients, exclude?: ReadonlySet<Endpoint>): (Endpoint | undefined)[] {
  return ips.map((ip) => balancer.pick(ip, exclude));
}

function setup(weights: number[]): { balancer: SourceHashBalancer; endpoints: Endpoint[] } {
  const endpoints = makeEndpoints(weights);
  const balancer = new SourceHashBalancer();
  balancer.setEndpoints(endpoints);
  return { balancer, endpoints };
}

describe('source hash (Maglev)', { timeout: 10_000 }, () => {
  it('sends the same client IP to the same endpoint, every time', () => {
    const { balancer } = setup([1, 1, 1, 1, 1]);
    const first = route(balancer);
    for (let round = 0; round < 3; round++) assert.deepEqual(route(balancer), first);
    // A fresh balancer over the same endpoints agrees: the mapping is a function of the IP.
    assert.deepEqual(
      route(setup([1, 1, 1, 1, 1]).balancer).map((e) => e?.label),
      first.map((e) => e?.label),
    );
  });

  it('spreads 20 client addresses over the endpoints and 1,000 evenly', () => {
    const { balancer, endpoints } = setup([1, 1, 1, 1, 1]);
    const twenty = Array.from({ length: 20 }, (_, i) => `127.0.0.${i + 1}`);
    assert.ok(tally(endpoints, route(balancer, twenty)).filter((n) => n > 0).length >= 4);
    for (const count of tally(endpoints, route(balancer))) assert.ok(count > 150 && count < 250, `count ${count}`);
  });

  it('honours weights (1:3)', () => {
    const { balancer, endpoints } = setup([1, 3]);
    const [light] = tally(endpoints, route(balancer)) as [number, number];
    assert.ok(light > 200 && light < 300, `light ${light}`);
  });

  it('when 1 of 5 goes down, moves only its clients (~20%), and moves them back', () => {
    const { balancer, endpoints } = setup([1, 1, 1, 1, 1]);
    const before = route(balancer);
    const leaving = endpoints[2]!;
    leaving.state = 'down';
    const during = route(balancer);
    const moved = clients.filter((_, i) => during[i] !== before[i]);
    assert.ok(
      clients.every((_, i) => before[i] === leaving || during[i] === before[i]),
      'only its clients move',
    );
    assert.ok(!during.includes(leaving));
    assert.ok(moved.length > 150 && moved.length < 250, `moved ${moved.length}`);
    // Its clients are spread over all the others, not dumped on one neighbour.
    const movedTo = tally(
      endpoints,
      during.filter((_, i) => before[i] === leaving),
    );
    assert.ok(movedTo.filter((n) => n > 0).length === 4);
    leaving.state = 'healthy';
    assert.deepEqual(route(balancer), before);
  });

  it('when 1 of 5 is removed (DNS, reload), moves its clients and few others (Maglev rebuild)', () => {
    const { balancer, endpoints } = setup([1, 1, 1, 1, 1]);
    const before = route(balancer);
    const leaving = endpoints[2]!;
    balancer.setEndpoints(endpoints.filter((e) => e !== leaving));
    const after = route(balancer);
    const ownMoved = clients.filter((_, i) => before[i] === leaving).length;
    const othersMoved = clients.filter((_, i) => before[i] !== leaving && after[i] !== before[i]).length;
    assert.ok(!after.includes(leaving));
    assert.ok(ownMoved > 150 && ownMoved < 250, `own ${ownMoved}`);
    assert.ok(othersMoved <= 20, `others moved ${othersMoved}`);
  });

  it('treats full and excluded endpoints as out, deterministically (retries follow one sequence)', () => {
    const { balancer, endpoints } = setup([1, 1, 1]);
    const ip = '192.0.2.10';
    const first = balancer.pick(ip, undefined)!;
    const second = balancer.pick(ip, new Set([first]))!;
    assert.notEqual(second, first);
    assert.equal(balancer.pick(ip, new Set([first])), second);
    const third = balancer.pick(ip, new Set([first, second]));
    assert.ok(third !== undefined && third !== first && third !== second);
    assert.equal(balancer.pick(ip, new Set(endpoints)), undefined);
  });

  it('still finds the last endpoint standing among 200', () => {
    const { balancer, endpoints } = setup(Array.from({ length: 200 }, () => 1));
    for (const endpoint of endpoints) endpoint.state = 'down';
    const survivor = endpoints[123]!;
    survivor.state = 'healthy';
    assert.ok(route(balancer, clients.slice(0, 50)).every((e) => e === survivor));
  });

  it('treats an IPv4-mapped IPv6 client as the same client', () => {
    const { balancer } = setup([1, 1, 1, 1, 1]);
    for (const ip of clients.slice(0, 50)) assert.equal(balancer.pick(`::ffff:${ip}`, undefined), balancer.pick(ip, undefined));
  });

  it('builds a full Maglev table with shares by weight', () => {
    assert.equal(maglevTableSize(5), 4093);
    assert.equal(maglevTableSize(1000), 262139);
    const table = buildMaglevTable(['a', 'b', 'c'], [1, 2, 1], 4093);
    const counts = [0, 0, 0];
    for (const owner of table) counts[owner] = counts[owner]! + 1;
    assert.equal(
      counts.reduce((x, y) => x + y, 0),
      4093,
    );
    assert.ok(Math.abs(counts[1]! / 4093 - 0.5) < 0.01, `counts ${counts.join()}`);
    assert.ok(buildMaglevTable([], [], 4093).every((owner) => owner === -1));
  });
});
