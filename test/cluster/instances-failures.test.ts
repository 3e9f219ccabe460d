/**
 * `limits_scope: cluster` end to end, the failures: tcpproxy processes (one with `--workers 2`)
 * on one real redis-server started by the test. A SIGKILLed process's slots come back after its
 * lease; Redis killed and restarted under load: on_error is followed, the outage is logged once
 * per process, and the counts are right afterwards; on_error: deny and /readyz; a process that
 * stops leaves at once.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleValue, type ProxyProcess } from '../helpers/ops.js';
import { instancesFixture } from '../helpers/cluster-instances.js';
import { sharedCounts } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

describe('limits_scope: cluster across processes: failures', { timeout: 120_000 }, () => {
  const instances = instancesFixture();

  it('a SIGKILLed process gives its slots back within lease + lease/3', async () => {
    const leaseMs = 2_000;
    // A generous Redis timeout: on a loaded machine an admission decided by on_error (allow)
    // would be admitted while A's slots are still counted, and the count below would be off.
    const [a, b] = (await instances.start(2, { max_connections: 3 }, { lease: `${leaseMs}ms`, timeout: '5s' })) as [ProxyProcess, ProxyProcess];
    for (let i = 0; i < 3; i++) assert.equal((await instances.hold(a.port, `127.0.0.${i + 2}`)).admitted, true);
    assert.equal((await instances.hold(b.port)).admitted, false, 'A holds the whole limit');
    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    // Ask B until it admits: each attempt also reaps leases that ran out.
    const back = await eventually(
      async () => ((await instances.hold(b.port)).admitted ? Date.now() : undefined),
      "the dead process's slots to come back",
      30_000,
    );
    const reclaimedMs = back - killedAt;
    process.stdout.write(`# slots of a SIGKILLed process came back after ${reclaimedMs} ms (lease ${leaseMs} ms)\n`);
    // The documented bound (lease + lease/3 from the last renewal), with room for a loaded machine.
    assert.ok(reclaimedMs <= leaseMs + leaseMs / 3 + 3_000, `reclaimed after ${reclaimedMs} ms`);
    const counts = await sharedCounts(instances.fixture.client, 'db');
    assert.equal(counts.active, 1, "only B's connection is counted");
    assert.equal(counts.processes, 1);
  });

  it('Redis killed and restarted under load: on_error: allow, logged once, counts right afterwards (workers and instances mixed)', async () => {
    const [a, b] = (await instances.start(2, { max_connections: 12 }, { timeout: '200ms' }, { workers: [2, 1], admin: true })) as [ProxyProcess, ProxyProcess];
    const processes = 3; // A's two workers and B
    for (let i = 0; i < 4; i++) assert.equal((await instances.hold(i % 2 ? b.port : a.port, `127.0.0.${i + 2}`)).admitted, true);
    await instances.fixture.redis.stop();
    await Promise.all([a.waitForLines((l) => l.event === 'cluster_down', 1), b.waitForLog((l) => l.event === 'cluster_down')]);
    // Under the outage: admitted by on_error (allow), without waiting on Redis.
    for (let i = 0; i < 6; i++) assert.equal((await instances.hold(i % 2 ? b.port : a.port, `127.0.1.${i + 2}`)).admitted, true);
    const allowed = { listener: 'db', decision: 'allow' };
    const onErrorAllowed =
      sampleValue(await a.admin!.metrics(), 'tcpproxy_cluster_on_error_total', allowed)! +
      sampleValue(await b.admin!.metrics(), 'tcpproxy_cluster_on_error_total', allowed)!;
    assert.equal(onErrorAllowed, 6);
    assert.equal(sampleValue(await b.admin!.metrics(), 'tcpproxy_cluster_redis_up', {}), 0);
    // Two of those close while Redis is away.
    for (const socket of instances.sockets.splice(-2)) {
      socket.destroy();
    }
    await instances.fixture.redis.startServer();
    await Promise.all([a.waitForLines((l) => l.event === 'cluster_up', 4), b.waitForLines((l) => l.event === 'cluster_up', 2)]);
    // Every process re-registers what it holds: 4 + 6 - 2 = 8.
    await eventually(
      async () => ((await sharedCounts(instances.fixture.client, 'db')).active === 8 ? true : undefined),
      'the counts to be re-registered',
      10_000,
    );
    const counts = await sharedCounts(instances.fixture.client, 'db');
    assert.equal(counts.processes, processes);
    // The limit holds again, in total: 12 - 8 = 4 more.
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) results.push((await instances.hold(i % 2 ? b.port : a.port, `127.0.2.${i + 2}`)).admitted);
    assert.deepEqual(results, [true, true, true, true, false, false]);
    // One down and one up line per process, not per connection.
    const lines = (event: string) => [...a.logs, ...b.logs].filter((l) => l.event === event).length;
    assert.equal(lines('cluster_down'), processes);
    assert.equal(lines('cluster_up'), processes * 2);
    assert.equal(sampleValue(await b.admin!.metrics(), 'tcpproxy_cluster_redis_up', {}), 1);
  });

  it('on_error: deny refuses while Redis is down (reason cluster_unavailable) and /readyz says 503 until it is back', async () => {
    const [a] = (await instances.start(1, { max_connections: 5 }, { on_error: 'deny' }, { admin: true })) as [ProxyProcess];
    assert.equal((await a.admin!.call('GET', '/readyz')).status, 200);
    assert.equal((await instances.hold(a.port)).admitted, true);
    await instances.fixture.redis.stop();
    await a.waitForLog((l) => l.event === 'cluster_down');
    assert.equal((await instances.hold(a.port)).admitted, false);
    assert.equal((await a.waitForLog((l) => l.event === 'reject')).reason, 'cluster_unavailable');
    assert.equal((await a.admin!.call('GET', '/readyz')).status, 503);
    await instances.fixture.redis.startServer();
    await a.waitForLines((l) => l.event === 'cluster_up', 2);
    assert.equal((await a.admin!.call('GET', '/readyz')).status, 200);
    assert.equal((await instances.hold(a.port)).admitted, true);
    await eventually(async () => ((await sharedCounts(instances.fixture.client, 'db')).active === 2 ? true : undefined), 'the held connection re-registered');
  });

  it('a process that stops (SIGTERM) takes its part out at once, not at the end of its lease', async () => {
    const [a, b] = (await instances.start(2, { max_connections: 2 }, { lease: '1m' })) as [ProxyProcess, ProxyProcess];
    assert.equal((await instances.hold(a.port, '127.0.0.2')).admitted, true);
    assert.equal((await instances.hold(a.port, '127.0.0.3')).admitted, true);
    assert.equal((await instances.hold(b.port, '127.0.0.4')).admitted, false);
    a.child.kill('SIGTERM');
    assert.equal(await a.exited, 0);
    assert.deepEqual(await sharedCounts(instances.fixture.client, 'db'), { active: 0, ips: {}, processes: 1 });
    assert.equal((await instances.hold(b.port, '127.0.0.4')).admitted, true);
  });
});
