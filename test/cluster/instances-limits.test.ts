/**
 * `limits_scope: cluster` end to end, the limits: two tcpproxy processes (bin/tcpproxy) on one
 * real redis-server started by the test; each limit holds in total across them.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ProxyProcess } from '../helpers/ops.js';
import { instancesFixture, rejectLines } from '../helpers/cluster-instances.js';
import { sharedCounts, type Attempt } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

describe('limits_scope: cluster across processes: the limits', { timeout: 120_000 }, () => {
  const instances = instancesFixture();

  it('max_connections_per_ip holds in total across two processes', async () => {
    const [a, b] = (await instances.start(2, { max_connections_per_ip: 3 })) as [ProxyProcess, ProxyProcess];
    const results: boolean[] = [];
    for (const proxy of [a, b, a, b, a, b]) results.push((await instances.hold(proxy.port)).admitted);
    assert.deepEqual(results, [true, true, true, false, false, false]);
    // Another address is not held back by this one's count.
    assert.equal((await instances.hold(b.port, '127.0.0.2')).admitted, true);
    const refused = await rejectLines([a, b], 3);
    assert.ok(refused.every((l) => l.reason === 'limit'));
    assert.deepEqual((await sharedCounts(instances.fixture.client, 'db')).ips, { '127.0.0.1': 3, '127.0.0.2': 1 });
  });

  it('max_connections holds in total, and a closed connection frees its slot for the other process', async () => {
    const [a, b] = (await instances.start(2, { max_connections: 4 })) as [ProxyProcess, ProxyProcess];
    const held: Attempt[] = [];
    for (const [index, proxy] of [a, b, a, b].entries()) held.push(await instances.hold(proxy.port, `127.0.0.${index + 2}`));
    assert.ok(held.every((h) => h.admitted));
    assert.equal((await instances.hold(a.port, '127.0.0.9')).admitted, false);
    assert.equal((await instances.hold(b.port, '127.0.0.9')).admitted, false);
    // One closes on A: B may take it (the release reaches Redis in A's next batch).
    held[0]!.socket.end();
    await a.waitForLog((l) => l.event === 'close');
    await eventually(async () => ((await sharedCounts(instances.fixture.client, 'db')).active === 3 ? true : undefined), 'the release to reach Redis');
    assert.equal((await instances.hold(b.port, '127.0.0.9')).admitted, true);
    assert.equal((await instances.hold(a.port, '127.0.0.10')).admitted, false);
    assert.equal((await sharedCounts(instances.fixture.client, 'db')).active, 4);
  });

  it('new_connections_per_ip is one rate across processes', async () => {
    const [a, b] = (await instances.start(2, { new_connections_per_ip: { limit: 4, per: '1m' } })) as [ProxyProcess, ProxyProcess];
    const results: boolean[] = [];
    for (const proxy of [a, b, a, b, a, b]) results.push((await instances.hold(proxy.port)).admitted);
    assert.deepEqual(results, [true, true, true, true, false, false]);
    const refused = await rejectLines([a, b], 2);
    assert.deepEqual(
      refused.map((l) => l.reason),
      ['rate_limit', 'rate_limit'],
    );
  });
});
