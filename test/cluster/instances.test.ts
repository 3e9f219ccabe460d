/**
 * `limits_scope: cluster` end to end: several tcpproxy processes (bin/tcpproxy, one with
 * `--workers 2`) on one real redis-server started by the test. The limits hold in total
 * across them; a SIGKILLed process's slots come back after its lease; Redis killed and
 * restarted under load: on_error is followed, the outage is logged once per process, and the
 * counts are right afterwards.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { ConfigFile, eventually, sampleValue, spawnProxy, type ProxyProcess } from '../helpers/ops.js';
import { connectClient, startWhoami } from '../helpers/integration.js';
import { sharedCounts, TestRedis } from '../helpers/redis.js';
import type { TestServer } from '../helpers/servers.js';
import type { LogLine } from '../helpers/log-collector.js';

/** The access-log reject lines of these processes, once there are `count` (a line may trail its refusal). */
async function rejectLines(proxies: ProxyProcess[], count: number): Promise<LogLine[]> {
  const all = (): LogLine[] => proxies.flatMap((p) => p.logs.filter((l) => l.event === 'reject'));
  await eventually(async () => (all().length >= count ? true : undefined), `${count} reject lines`);
  return all();
}

interface Attempt {
  admitted: boolean;
  socket: Socket;
}

/** Connects through a proxy to a holding whoami upstream: admitted (its name arrives) or closed without a byte. */
async function attempt(port: number, localAddress?: string): Promise<Attempt> {
  const socket = await connectClient(port, '127.0.0.1', localAddress);
  const admitted = await new Promise<boolean>((resolve) => {
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
    socket.once('end', () => resolve(false));
  });
  if (!admitted) socket.destroy();
  return { admitted, socket };
}

describe('limits_scope: cluster across processes', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let client: Redis;
  let upstream: TestServer;
  const files: ConfigFile[] = [];
  const proxies: ProxyProcess[] = [];
  const sockets: Socket[] = [];

  before(async () => {
    redis = await TestRedis.start();
    client = redis.client();
    upstream = await startWhoami('up', { hold: true });
  });
  after(async () => {
    client.disconnect();
    await redis.stop();
    await upstream.close();
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await Promise.all(proxies.splice(0).map((p) => p.kill()));
    await Promise.all(files.splice(0).map((f) => f.remove()));
    // A test that failed with Redis stopped leaves it to the next one running and empty.
    if (!redis.running) await redis.startServer();
    await client.flushall();
  });

  async function startProxies(count: number, listener: Record<string, unknown>, cluster: Record<string, unknown> = {}, options: { workers?: number[]; admin?: boolean } = {}): Promise<ProxyProcess[]> {
    const started: ProxyProcess[] = [];
    // One after the other: worker processes start slowly on a loaded machine.
    for (let index = 0; index < count; index++) {
      const workers = options.workers?.[index] ?? 1;
      const file = await ConfigFile.create({
        ...(options.admin && { admin: { listen: '127.0.0.1:0' } }),
        shutdown_timeout: '1s',
        workers,
        cluster: { redis: redis.url, ...cluster },
        listeners: [{ name: 'db', listen: '127.0.0.1:0', upstreams: [upstream.address], limits_scope: 'cluster', ...listener }],
      });
      files.push(file);
      const proxy = await spawnProxy(file, { listening: workers, admin: options.admin === true, startTimeoutMs: 30_000 });
      proxies.push(proxy);
      // Every process (each worker) has connected to Redis before the test starts.
      await proxy.waitForLines((l) => l.event === 'cluster_up', workers, 30_000);
      started.push(proxy);
    }
    return started;
  }

  async function hold(port: number, localAddress?: string): Promise<Attempt> {
    const result = await attempt(port, localAddress);
    if (result.admitted) sockets.push(result.socket);
    return result;
  }

  it('max_connections_per_ip holds in total across two processes', async () => {
    const [a, b] = (await startProxies(2, { max_connections_per_ip: 3 })) as [ProxyProcess, ProxyProcess];
    const results: boolean[] = [];
    for (const proxy of [a, b, a, b, a, b]) results.push((await hold(proxy.port)).admitted);
    assert.deepEqual(results, [true, true, true, false, false, false]);
    // Another address is not held back by this one's count.
    assert.equal((await hold(b.port, '127.0.0.2')).admitted, true);
    const refused = await rejectLines([a, b], 3);
    assert.ok(refused.every((l) => l.reason === 'limit'));
    assert.deepEqual((await sharedCounts(client, 'db')).ips, { '127.0.0.1': 3, '127.0.0.2': 1 });
  });

  it('max_connections holds in total, and a closed connection frees its slot for the other process', async () => {
    const [a, b] = (await startProxies(2, { max_connections: 4 })) as [ProxyProcess, ProxyProcess];
    const held: Attempt[] = [];
    for (const [index, proxy] of [a, b, a, b].entries()) held.push(await hold(proxy.port, `127.0.0.${index + 2}`));
    assert.ok(held.every((h) => h.admitted));
    assert.equal((await hold(a.port, '127.0.0.9')).admitted, false);
    assert.equal((await hold(b.port, '127.0.0.9')).admitted, false);
    // One closes on A: B may take it (the release reaches Redis in A's next batch).
    held[0]!.socket.end();
    await a.waitForLog((l) => l.event === 'close');
    await eventually(async () => ((await sharedCounts(client, 'db')).active === 3 ? true : undefined), 'the release to reach Redis');
    assert.equal((await hold(b.port, '127.0.0.9')).admitted, true);
    assert.equal((await hold(a.port, '127.0.0.10')).admitted, false);
    assert.equal((await sharedCounts(client, 'db')).active, 4);
  });

  it('new_connections_per_ip is one rate across processes', async () => {
    const [a, b] = (await startProxies(2, { new_connections_per_ip: { limit: 4, per: '1m' } })) as [ProxyProcess, ProxyProcess];
    const results: boolean[] = [];
    for (const proxy of [a, b, a, b, a, b]) results.push((await hold(proxy.port)).admitted);
    assert.deepEqual(results, [true, true, true, true, false, false]);
    const refused = await rejectLines([a, b], 2);
    assert.deepEqual(refused.map((l) => l.reason), ['rate_limit', 'rate_limit']);
  });

  it('a SIGKILLed process gives its slots back within lease + lease/3', async () => {
    const leaseMs = 2_000;
    const [a, b] = (await startProxies(2, { max_connections: 3 }, { lease: `${leaseMs}ms` })) as [ProxyProcess, ProxyProcess];
    for (let i = 0; i < 3; i++) assert.equal((await hold(a.port, `127.0.0.${i + 2}`)).admitted, true);
    assert.equal((await hold(b.port)).admitted, false, 'A holds the whole limit');
    a.child.kill('SIGKILL');
    await a.exited;
    const killedAt = Date.now();
    // Ask B until it admits: each attempt also reaps leases that ran out.
    const back = await eventually(async () => ((await hold(b.port)).admitted ? Date.now() : undefined), 'the dead process\'s slots to come back', 30_000);
    const reclaimedMs = back - killedAt;
    process.stdout.write(`# slots of a SIGKILLed process came back after ${reclaimedMs} ms (lease ${leaseMs} ms)\n`);
    // The documented bound (lease + lease/3 from the last renewal), with room for a loaded machine.
    assert.ok(reclaimedMs <= leaseMs + leaseMs / 3 + 3_000, `reclaimed after ${reclaimedMs} ms`);
    const counts = await sharedCounts(client, 'db');
    assert.equal(counts.active, 1, 'only B\'s connection is counted');
    assert.equal(counts.processes, 1);
  });

  it('Redis killed and restarted under load: on_error: allow, logged once, counts right afterwards (workers and instances mixed)', async () => {
    const [a, b] = (await startProxies(2, { max_connections: 12 }, { timeout: '200ms' }, { workers: [2, 1], admin: true })) as [ProxyProcess, ProxyProcess];
    const processes = 3; // A's two workers and B
    for (let i = 0; i < 4; i++) assert.equal((await hold(i % 2 ? b.port : a.port, `127.0.0.${i + 2}`)).admitted, true);
    await redis.stop();
    await Promise.all([a.waitForLines((l) => l.event === 'cluster_down', 1), b.waitForLog((l) => l.event === 'cluster_down')]);
    // Under the outage: admitted by on_error (allow), without waiting on Redis.
    for (let i = 0; i < 6; i++) assert.equal((await hold(i % 2 ? b.port : a.port, `127.0.1.${i + 2}`)).admitted, true);
    const allowed = { listener: 'db', decision: 'allow' };
    const onErrorAllowed = sampleValue(await a.admin!.metrics(), 'tcpproxy_cluster_on_error_total', allowed)! + sampleValue(await b.admin!.metrics(), 'tcpproxy_cluster_on_error_total', allowed)!;
    assert.equal(onErrorAllowed, 6);
    assert.equal(sampleValue(await b.admin!.metrics(), 'tcpproxy_cluster_redis_up', {}), 0);
    // Two of those close while Redis is away.
    for (const socket of sockets.splice(-2)) {
      socket.destroy();
    }
    await redis.startServer();
    await Promise.all([a.waitForLines((l) => l.event === 'cluster_up', 4), b.waitForLines((l) => l.event === 'cluster_up', 2)]);
    // Every process re-registers what it holds: 4 + 6 - 2 = 8.
    await eventually(async () => ((await sharedCounts(client, 'db')).active === 8 ? true : undefined), 'the counts to be re-registered', 10_000);
    const counts = await sharedCounts(client, 'db');
    assert.equal(counts.processes, processes);
    // The limit holds again, in total: 12 - 8 = 4 more.
    const results: boolean[] = [];
    for (let i = 0; i < 6; i++) results.push((await hold(i % 2 ? b.port : a.port, `127.0.2.${i + 2}`)).admitted);
    assert.deepEqual(results, [true, true, true, true, false, false]);
    // One down and one up line per process, not per connection.
    const lines = (event: string) => [...a.logs, ...b.logs].filter((l) => l.event === event).length;
    assert.equal(lines('cluster_down'), processes);
    assert.equal(lines('cluster_up'), processes * 2);
    assert.equal(sampleValue(await b.admin!.metrics(), 'tcpproxy_cluster_redis_up', {}), 1);
  });

  it('on_error: deny refuses while Redis is down (reason cluster_unavailable) and /readyz says 503 until it is back', async () => {
    const [a] = (await startProxies(1, { max_connections: 5 }, { on_error: 'deny' }, { admin: true })) as [ProxyProcess];
    assert.equal((await a.admin!.call('GET', '/readyz')).status, 200);
    assert.equal((await hold(a.port)).admitted, true);
    await redis.stop();
    await a.waitForLog((l) => l.event === 'cluster_down');
    assert.equal((await hold(a.port)).admitted, false);
    assert.equal((await a.waitForLog((l) => l.event === 'reject')).reason, 'cluster_unavailable');
    assert.equal((await a.admin!.call('GET', '/readyz')).status, 503);
    await redis.startServer();
    await a.waitForLines((l) => l.event === 'cluster_up', 2);
    assert.equal((await a.admin!.call('GET', '/readyz')).status, 200);
    assert.equal((await hold(a.port)).admitted, true);
    await eventually(async () => ((await sharedCounts(client, 'db')).active === 2 ? true : undefined), 'the held connection re-registered');
  });

  it('a process that stops (SIGTERM) takes its part out at once, not at the end of its lease', async () => {
    const [a, b] = (await startProxies(2, { max_connections: 2 }, { lease: '1m' })) as [ProxyProcess, ProxyProcess];
    assert.equal((await hold(a.port, '127.0.0.2')).admitted, true);
    assert.equal((await hold(a.port, '127.0.0.3')).admitted, true);
    assert.equal((await hold(b.port, '127.0.0.4')).admitted, false);
    a.child.kill('SIGTERM');
    assert.equal(await a.exited, 0);
    assert.deepEqual(await sharedCounts(client, 'db'), { active: 0, ips: {}, processes: 1 });
    assert.equal((await hold(b.port, '127.0.0.4')).admitted, true);
  });
});
