/**
 * Run-time upstream changes on a pool (what the admin API's add/update/remove call): every
 * strategy follows new weights and members at once, removal takes an upstream out of the
 * rotation while its connections finish, and refusals carry stable codes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/balancing/endpoint.js';
import type { ResolvedAddress } from '../../src/balancing/resolver.js';
import { UpstreamChangeError, UpstreamPool, type BalanceStrategy, type UpstreamSpec } from '../../src/balancing/upstream-pool.js';
import { seededRandom } from '../../bench/access-list.js';
import { tally } from './helpers.js';
import { memoryLogger } from '../helpers/log-collector.js';

function spec(host: string, port: number, extra: Partial<UpstreamSpec> = {}): UpstreamSpec {
  return { address: `${host}:${port}`, host, port, weight: 1, ...extra };
}

async function startedPool(balance: BalanceStrategy, upstreams: UpstreamSpec[], extra: { lookup?: (host: string) => Promise<ResolvedAddress[]> } = {}) {
  const pool = new UpstreamPool({ listener: 'main', logger: memoryLogger().logger, random: seededRandom(7), ...extra });
  pool.apply(await pool.prepare({ balance, upstreams }));
  return pool;
}

function picks(pool: UpstreamPool, count: number, clientIp = '10.0.0.1'): Endpoint[] {
  return Array.from({ length: count }, () => {
    const result = pool.pick(clientIp);
    assert.ok(result.endpoint, 'a pick');
    return result.endpoint;
  });
}

function byLabel(pool: UpstreamPool, label: string): Endpoint {
  const endpoint = pool.endpoints().find((e) => e.label === label);
  assert.ok(endpoint, label);
  return endpoint;
}

async function refusal(action: () => unknown): Promise<string> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof UpstreamChangeError, String(error));
    return error.code;
  }
  assert.fail('expected a refusal');
}

const clients = Array.from({ length: 600 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.7`);

describe('run-time upstream changes', { timeout: 10_000 }, () => {
  it('round_robin gives exactly the new shares right after a weight change', async () => {
    const pool = await startedPool('round_robin', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002)]);
    const [a, b] = pool.endpoints() as [Endpoint, Endpoint];
    assert.deepEqual(tally([a, b], picks(pool, 1000)), [500, 500]);
    pool.updateUpstream('127.0.0.1:9001', { weight: 3 });
    assert.equal(a.weight, 3);
    // Every window of sum(weights) = 4 picks holds 3 of A and 1 of B: no burst for A's
    // "missed" turns under its old weight.
    for (let window = 0; window < 50; window++) assert.deepEqual(tally([a, b], picks(pool, 4)), [3, 1], `window ${window}`);
    pool.updateUpstream('127.0.0.1:9001', { weight: 1 });
    for (let window = 0; window < 50; window++) assert.deepEqual(tally([a, b], picks(pool, 2)), [1, 1], `window ${window}`);
    pool.close();
  });

  it('round_robin takes an added upstream into the rotation and drops a removed one', async () => {
    const pool = await startedPool('round_robin', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002)]);
    picks(pool, 7);
    await pool.addUpstream(spec('127.0.0.1', 9003, { weight: 2 }));
    const [a, b, c] = pool.endpoints() as [Endpoint, Endpoint, Endpoint];
    assert.equal(c.label, '127.0.0.1:9003');
    assert.deepEqual(tally([a, b, c], picks(pool, 400)), [100, 100, 200]);
    const removed = pool.removeUpstream('127.0.0.1:9001');
    assert.deepEqual(removed.endpoints, [a]);
    assert.equal(removed.upstream.address, '127.0.0.1:9001');
    assert.deepEqual(tally([a, b, c], picks(pool, 300)), [0, 100, 200]);
    assert.deepEqual(
      pool.upstreams().map((u) => u.address),
      ['127.0.0.1:9002', '127.0.0.1:9003'],
    );
    pool.close();
  });

  it('source_hash: an added upstream takes about its share, and removing it again restores every client', async () => {
    const pool = await startedPool('source_hash', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002)]);
    const before = clients.map((ip) => pool.pick(ip).endpoint!.label);
    await pool.addUpstream(spec('127.0.0.1', 9003));
    const during = clients.map((ip) => pool.pick(ip).endpoint!.label);
    const toNew = during.filter((label) => label === '127.0.0.1:9003').length;
    const elsewhere = during.filter((label, i) => label !== '127.0.0.1:9003' && label !== before[i]).length;
    assert.ok(toNew > clients.length * 0.25 && toNew < clients.length * 0.42, `the new upstream took ${toNew} of ${clients.length}`);
    assert.ok(elsewhere < clients.length * 0.05, `${elsewhere} clients moved between the old upstreams`);
    // The same client keeps going to the same upstream.
    assert.deepEqual(
      clients.map((ip) => pool.pick(ip).endpoint!.label),
      during,
    );
    pool.removeUpstream('127.0.0.1:9003');
    assert.deepEqual(
      clients.map((ip) => pool.pick(ip).endpoint!.label),
      before,
    );
    pool.close();
  });

  it('source_hash follows a weight change (table rebuilt with the new shares)', async () => {
    const pool = await startedPool('source_hash', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002)]);
    pool.updateUpstream('127.0.0.1:9002', { weight: 4 });
    const onHeavy = clients.filter((ip) => pool.pick(ip).endpoint!.label === '127.0.0.1:9002').length;
    assert.ok(onHeavy > clients.length * 0.72 && onHeavy < clients.length * 0.88, `${onHeavy} of ${clients.length} on the weight-4 upstream`);
    pool.close();
  });

  it('least_connections weighs load by the new weight and sees added members', async () => {
    const pool = await startedPool('least_connections', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002)]);
    pool.updateUpstream('127.0.0.1:9002', { weight: 2 });
    const [a, b] = pool.endpoints() as [Endpoint, Endpoint];
    // Holding every pick open: B (weight 2) ends with twice A's connections.
    for (let i = 0; i < 30; i++) pool.acquire(picks(pool, 1)[0]!);
    assert.deepEqual([a.active, b.active], [10, 20]);
    await pool.addUpstream(spec('127.0.0.1', 9003));
    const c = byLabel(pool, '127.0.0.1:9003');
    // The empty newcomer is the least loaded until it catches up with A (10).
    const next = picks(pool, 1)[0]!;
    assert.equal(next, c);
    pool.close();
  });

  it('random follows weight changes and removals', async () => {
    const pool = await startedPool('random', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002), spec('127.0.0.1', 9003)]);
    const [a, b, c] = pool.endpoints() as [Endpoint, Endpoint, Endpoint];
    pool.updateUpstream('127.0.0.1:9001', { weight: 8 });
    const [onA, onB, onC] = tally([a, b, c], picks(pool, 5000));
    assert.ok(onA! > 3700 && onA! < 4300, `A ${onA} of 5000 at 8/10`);
    assert.ok(onB! > 300 && onC! > 300);
    pool.removeUpstream('127.0.0.1:9002');
    assert.equal(tally([a, b, c], picks(pool, 2000))[1], 0);
    pool.close();
  });

  it('a removed upstream gets no new connection; the ones it has release cleanly', async () => {
    const pool = await startedPool('round_robin', [spec('127.0.0.1', 9001), spec('127.0.0.1', 9002)]);
    const a = byLabel(pool, '127.0.0.1:9001');
    pool.acquire(a);
    const [removed] = pool.removeUpstream('127.0.0.1:9001').endpoints;
    assert.equal(removed, a);
    assert.equal(a.active, 1, 'its connection is still counted on it');
    assert.ok(picks(pool, 20).every((e) => e !== a));
    pool.release(a);
    assert.equal(a.active, 0);
    assert.ok(picks(pool, 20).every((e) => e !== a));
    pool.close();
  });

  it('raising max_connections wakes connections waiting on a full upstream', async () => {
    const pool = await startedPool('round_robin', [spec('127.0.0.1', 9001, { maxConnections: 1 })]);
    const a = byLabel(pool, '127.0.0.1:9001');
    pool.acquire(a);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'limit' });
    let woken = 0;
    const unsubscribe = pool.onRelease(() => woken++);
    pool.updateUpstream('127.0.0.1:9001', { maxConnections: 2 });
    assert.equal(woken, 1);
    assert.equal(pool.pick('10.0.0.1').endpoint, a);
    pool.updateUpstream('127.0.0.1:9001', { maxConnections: null });
    assert.equal(a.maxConnections, Infinity);
    assert.equal(pool.upstreams()[0]!.maxConnections, undefined);
    unsubscribe();
    pool.close();
  });

  it('adds an upstream by name through the resolver, and refuses what it cannot resolve', async () => {
    const lookup = async (host: string): Promise<ResolvedAddress[]> => {
      if (host === 'svc.test')
        return [
          { address: '127.0.0.5', family: 4 },
          { address: '127.0.0.6', family: 4 },
        ];
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const pool = await startedPool('round_robin', [spec('127.0.0.1', 9001)], { lookup });
    await pool.addUpstream(spec('svc.test', 9001, { weight: 2 }));
    assert.deepEqual(
      pool.endpoints().map((e) => [e.label, e.upstream, e.weight]),
      [
        ['127.0.0.1:9001', '127.0.0.1:9001', 1],
        ['127.0.0.5:9001', 'svc.test:9001', 2],
        ['127.0.0.6:9001', 'svc.test:9001', 2],
      ],
    );
    // An endpoint label finds the upstream it belongs to.
    pool.updateUpstream('127.0.0.6:9001', { weight: 5 });
    assert.equal(byLabel(pool, '127.0.0.5:9001').weight, 5);
    assert.equal(await refusal(() => pool.addUpstream(spec('nowhere.test', 9001))), 'unresolvable');
    assert.equal(pool.upstreams().length, 2);
    pool.close();
  });

  it('refuses with stable codes: duplicates, unknown, invalid settings, the last upstream', async () => {
    const pool = await startedPool('round_robin', [spec('127.0.0.1', 9001)]);
    assert.equal(await refusal(() => pool.addUpstream(spec('127.0.0.1', 9001))), 'upstream_exists');
    assert.equal(await refusal(() => pool.updateUpstream('127.0.0.1:9999', { weight: 2 })), 'unknown_upstream');
    assert.equal(await refusal(() => pool.removeUpstream('127.0.0.1:9999')), 'unknown_upstream');
    assert.equal(await refusal(() => pool.updateUpstream('127.0.0.1:9001', { weight: 0 })), 'invalid_settings');
    assert.equal(await refusal(() => pool.addUpstream(spec('127.0.0.1', 9002, { weight: -1 }))), 'invalid_settings');
    assert.equal(await refusal(() => pool.removeUpstream('127.0.0.1:9001')), 'last_upstream');
    assert.deepEqual(pool.changesSinceConfig(), []);
    await pool.addUpstream(spec('127.0.0.1', 9002));
    pool.removeUpstream('127.0.0.1:9001');
    assert.deepEqual(pool.changesSinceConfig(), ['add 127.0.0.1:9002 weight 1', 'remove 127.0.0.1:9001']);
    pool.close();
  });
});
