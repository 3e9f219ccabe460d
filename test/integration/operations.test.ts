/**
 * Operations end to end, in process: the admin API of a real ProxyRuntime, driven by real
 * connections through the proxy. Metric values, connection listing and closing, refusals
 * by reason, readiness, upstream drain/enable, what a reload keeps, the token and malformed
 * requests. Reload from the file, SIGTERM and workers run the CLI process: ops-reload, ops-workers.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { buildSnapshot } from '../../src/config/load.js';
import { oneListener, startProxy, type TestProxy } from '../helpers/proxy.js';
import { refusedPort, startEchoServer, type TestServer } from '../helpers/servers.js';
import { AdminClient, roundTrip, sampleValue, type Connection, type Stats } from '../helpers/ops.js';
import type { Socket } from 'node:net';
import { closed, connect, readToEnd } from '../helpers/sockets.js';

const TOKEN = 'ops-secret';

function listenerStats(stats: Stats, name: string): Stats['listeners'][number] {
  const found = stats.listeners.find((l) => l.name === name);
  assert.ok(found, `listener ${name} missing from /api/stats`);
  return found;
}

describe('admin API on the real runtime', { timeout: 30_000 }, () => {
  let echo: TestServer;
  let proxy: TestProxy;
  let admin: AdminClient;
  let deadPort: number;
  let raw: Record<string, unknown>;
  const port = (listener: string): number => proxy.runtime.listenerAddress(listener)!.port;

  before(async () => {
    echo = await startEchoServer();
    deadPort = await refusedPort();
    raw = {
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      shutdown_timeout: '1s',
      listeners: [
        { name: 'main', listen: '127.0.0.1:0', upstreams: [echo.address] },
        { name: 'guarded', listen: '127.0.0.1:0', upstreams: [echo.address], access: { deny: ['127.0.0.0/8'] } },
        { name: 'limited', listen: '127.0.0.1:0', upstreams: [echo.address], max_connections: 1 },
        // With health checks (that will not run during the test), a failed connect marks the
        // upstream down until a check passes: no back-off timer brings it back mid-test.
        {
          name: 'dead',
          listen: '127.0.0.1:0',
          upstreams: [`127.0.0.1:${deadPort}`],
          connect_retries: 0,
          health_check: { interval: '1h' },
        },
      ],
    };
    proxy = await startProxy(raw);
    admin = new AdminClient(proxy.runtime.adminAddress()!.port, TOKEN);
  });
  after(async () => {
    await proxy.stop();
    await echo.close();
  });

  it('the token guards everything but /healthz, /readyz and the dashboard page', async () => {
    const anonymous = new AdminClient(admin.port);
    const health = await anonymous.call('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok\n');
    const ready = await anonymous.call('GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.equal(ready.body, 'ready\n');
    const page = await anonymous.call('GET', '/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.ok(page.headers['content-security-policy'], 'the dashboard is served with a CSP');
    for (const [method, path] of [
      ['GET', '/metrics'],
      ['GET', '/api/stats'],
      ['GET', '/api/connections'],
      ['DELETE', '/api/connections/1'],
      ['POST', '/api/reload'],
      ['POST', `/api/upstreams/main/${encodeURIComponent(echo.address)}/drain`],
    ] as const) {
      const refused = await anonymous.call(method, path);
      assert.equal(refused.status, 401, `${method} ${path} without the token`);
      assert.match(String(refused.headers['www-authenticate']), /^Bearer/);
      const wrong = await new AdminClient(admin.port, 'not-the-token').call(method, path);
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
    }
    assert.equal((await admin.call('GET', '/metrics')).status, 200);
  });

  it('every reason is exported at 0 before any traffic', async () => {
    const text = await admin.metrics();
    for (const reason of ['acl', 'schedule', 'limit', 'rate_limit', 'queue_timeout', 'no_upstream', 'proxy_protocol']) {
      assert.equal(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'limited', reason }), 0, reason);
    }
    for (const reason of ['client_closed', 'upstream_closed', 'idle_timeout', 'max_lifetime', 'error', 'shutdown', 'filter', 'admin']) {
      assert.equal(sampleValue(text, 'tcpproxy_closes_total', { listener: 'limited', reason }), 0, reason);
    }
    assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'limited' }), 0);
  });

  it('connection, byte and close metrics follow finished connections', async () => {
    const sizes = [1000, 20_000, 300_000];
    for (const size of sizes) {
      const client = await connect(port('main'));
      const reply = readToEnd(client);
      client.end(Buffer.alloc(size, 7));
      assert.equal((await reply).length, size);
    }
    await proxy.waitForLog(() => proxy.accessLog().filter((l) => l.listener === 'main').length >= sizes.length);
    const total = sizes.reduce((a, b) => a + b, 0);
    const text = await admin.metrics();
    assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'main' }), 3);
    assert.equal(sampleValue(text, 'tcpproxy_connections_active', { listener: 'main' }), 0);
    assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'from_client' }), total);
    assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'to_client' }), total);
    assert.equal(sampleValue(text, 'tcpproxy_closes_total', { listener: 'main', reason: 'client_closed' }), 3);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_total', { listener: 'main', upstream: echo.address }), 3);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_bytes_total', { listener: 'main', upstream: echo.address, direction: 'from_client' }), total);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_connect_seconds_count', { listener: 'main', upstream: echo.address }), 3);
    assert.equal(sampleValue(text, 'tcpproxy_connection_duration_seconds_count', { listener: 'main' }), 3);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { listener: 'main', upstream: echo.address }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_state', { listener: 'main', upstream: echo.address, state: 'healthy' }), 1);
    const stats = await admin.json<Stats>('/api/stats');
    const main = listenerStats(stats, 'main');
    assert.equal(main.connections_total, 3);
    assert.equal(main.bytes_from_client, total);
    assert.equal(main.bytes_to_client, total);
    assert.equal(main.closes.client_closed, 3);
    const upstream = stats.upstreams.find((u) => u.listener === 'main');
    assert.deepEqual(
      { address: upstream?.address, state: upstream?.state, connections_total: upstream?.connections_total, active: upstream?.active },
      { address: echo.address, state: 'healthy', connections_total: 3, active: 0 },
    );
  });

  it('a live connection is listed, counted while open, and DELETE closes it with reason admin', async () => {
    const before = listenerStats(await admin.json<Stats>('/api/stats'), 'main');
    const client = await connect(port('main'));
    await roundTrip(client, Buffer.alloc(4096, 1));
    const listed = await admin.json<Connection[]>('/api/connections?listener=main&sort=bytes&limit=5');
    assert.equal(listed.length, 1);
    const [live] = listed as [Connection];
    assert.equal(live.listener, 'main');
    assert.equal(live.upstream, echo.address);
    assert.equal(live.client, `127.0.0.1:${client.localPort}`);
    assert.equal(live.bytes_from_client, 4096);
    assert.equal(live.bytes_to_client, 4096);
    assert.ok(live.age_ms >= 0);
    assert.deepEqual(await admin.json<Connection[]>('/api/connections?listener=limited'), []);
    // Bytes of the open connection already count, in /metrics and /api/stats alike.
    const text = await admin.metrics();
    assert.equal(sampleValue(text, 'tcpproxy_connections_active', { listener: 'main' }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_active', { listener: 'main', upstream: echo.address }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'from_client' }), before.bytes_from_client + 4096);
    const during = listenerStats(await admin.json<Stats>('/api/stats'), 'main');
    assert.equal(during.active, 1);
    assert.equal(during.bytes_to_client, before.bytes_to_client + 4096);

    const gone = closed(client);
    const deleted = await admin.call('DELETE', `/api/connections/${encodeURIComponent(live.id)}`);
    assert.equal(deleted.status, 200, deleted.body);
    await gone;
    const line = await proxy.waitForLog((l) => l.event === 'close' && l.id === live.id);
    assert.equal(line.reason, 'admin');
    assert.equal(line.bytes_from_client, 4096);
    assert.equal((await admin.call('DELETE', `/api/connections/${encodeURIComponent(live.id)}`)).status, 404);
    const after = await admin.metrics();
    assert.equal(sampleValue(after, 'tcpproxy_closes_total', { listener: 'main', reason: 'admin' }), 1);
    assert.equal(sampleValue(after, 'tcpproxy_connections_active', { listener: 'main' }), 0);
    assert.deepEqual(await admin.json<Connection[]>('/api/connections'), []);
  });

  it('refusals are counted by reason: acl, limit, no_upstream', async () => {
    // acl: closed at once, without a byte.
    const denied = await connect(port('guarded'));
    assert.equal((await readToEnd(denied)).length, 0);
    await proxy.waitForLog((l) => l.event === 'reject' && l.listener === 'guarded' && l.reason === 'acl');
    // limit: the second of two concurrent connections.
    const holder = await connect(port('limited'));
    await roundTrip(holder, Buffer.from('hold'));
    const over = await connect(port('limited'));
    assert.equal((await readToEnd(over)).length, 0);
    await proxy.waitForLog((l) => l.event === 'reject' && l.listener === 'limited' && l.reason === 'limit');
    holder.destroy();
    // no_upstream: the only upstream refuses; it is then ejected, so the next one is refused at once.
    for (let i = 0; i < 2; i++) {
      const orphan = await connect(port('dead'));
      assert.equal((await readToEnd(orphan)).length, 0);
    }
    await proxy.waitForLog(() => proxy.accessLog().filter((l) => l.listener === 'dead' && l.reason === 'no_upstream').length === 2);

    const text = await admin.metrics();
    assert.equal(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'guarded', reason: 'acl' }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'limited', reason: 'limit' }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'dead', reason: 'no_upstream' }), 2);
    assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'guarded' }), 0, 'a refusal is not a proxied connection');
    assert.equal(sampleValue(text, 'tcpproxy_upstream_connect_failures_total', { listener: 'dead', upstream: `127.0.0.1:${deadPort}` }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { listener: 'dead', upstream: `127.0.0.1:${deadPort}` }), 0);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_state', { listener: 'dead', upstream: `127.0.0.1:${deadPort}`, state: 'down' }), 1);
    const stats = await admin.json<Stats>('/api/stats');
    assert.equal(listenerStats(stats, 'guarded').rejections.acl, 1);
    assert.equal(listenerStats(stats, 'limited').rejections.limit, 1);
    assert.equal(listenerStats(stats, 'dead').rejections.no_upstream, 2);
    assert.equal(stats.upstreams.find((u) => u.listener === 'dead')?.state, 'down');
    // A listener without a reachable upstream makes the proxy not ready.
    const ready = await admin.call('GET', '/readyz');
    assert.equal(ready.status, 503);
    assert.equal(ready.body, 'not ready\n');
  });

  it('a reload keeps the counters and health state of unchanged upstreams', async () => {
    const before = await admin.json<Stats>('/api/stats');
    // Listen addresses of port 0 compare equal: the same listeners stay bound.
    const result = await proxy.runtime.reload(buildSnapshot({ log: { level: 'info' }, ...raw }));
    assert.deepEqual(result, { ok: true });
    const after = await admin.json<Stats>('/api/stats');
    assert.deepEqual(after.upstreams, before.upstreams);
    assert.deepEqual(after.listeners, before.listeners);
    assert.equal(after.upstreams.find((u) => u.listener === 'dead')?.state, 'down');
    assert.equal((await admin.call('GET', '/readyz')).status, 503);
    const client = await connect(port('main'));
    await roundTrip(client, 'after reload');
    client.destroy();
    // Without a config file there is nothing to re-read: POST /api/reload says so.
    const reload = await admin.call('POST', '/api/reload');
    assert.equal(reload.status, 400);
    assert.match((JSON.parse(reload.body) as { error: string }).error, /without --config/);
  });

  it('malformed requests get 4xx and the endpoint keeps serving', async () => {
    const cases: [string, string, number][] = [
      ['GET', '/nope', 404],
      ['GET', '/api/connections?limit=lots', 400],
      ['GET', '/api/connections?color=red', 400],
      ['GET', '/api/upstreams/main/%E0%A4%A/drain', 400],
      ['GET', `/api/upstreams/main/${encodeURIComponent(echo.address)}/drain`, 405],
      ['POST', '/api/stats', 405],
      ['POST', `/api/upstreams/nosuch/${encodeURIComponent(echo.address)}/drain`, 404],
      ['POST', '/api/upstreams/main/127.0.0.1%3A1/drain', 404],
      ['DELETE', '/api/connections/999999', 404],
    ];
    for (const [method, path, status] of cases) {
      const response = await admin.call(method, path);
      assert.equal(response.status, status, `${method} ${path}: ${response.body}`);
      assert.ok('error' in JSON.parse(response.body), `${method} ${path} answers a JSON error`);
    }
    const crossSite = await admin.call('POST', `/api/upstreams/main/${encodeURIComponent(echo.address)}/drain`, { Origin: 'http://evil.example' });
    assert.equal(crossSite.status, 403);
    assert.equal((await admin.call('GET', '/healthz')).status, 200);
    assert.equal(listenerStats(await admin.json<Stats>('/api/stats'), 'main').name, 'main');
  });
});

describe('admin API: upstream drain and enable', { timeout: 30_000 }, () => {
  let first: TestServer;
  let second: TestServer;
  let proxy: TestProxy;
  let admin: AdminClient;

  before(async () => {
    first = await startEchoServer();
    second = await startEchoServer();
    proxy = await startProxy({ admin: { listen: '127.0.0.1:0' }, ...oneListener([first.address, second.address]) });
    admin = new AdminClient(proxy.runtime.adminAddress()!.port);
  });
  after(async () => {
    await proxy.stop();
    await first.close();
    await second.close();
  });

  /** Opens `count` connections one after the other, each checked with one round trip. */
  async function openMany(count: number): Promise<Socket[]> {
    const clients: Socket[] = [];
    for (let i = 0; i < count; i++) {
      const client = await connect(proxy.port);
      await roundTrip(client, Buffer.from(`hello ${i}`));
      clients.push(client);
    }
    return clients;
  }

  async function closeAll(clients: Socket[]): Promise<void> {
    await Promise.all(
      clients.map((client) => {
        const gone = once(client, 'close');
        client.destroy();
        return gone;
      }),
    );
  }

  it('a drained upstream gets no new connections, its open ones continue; enable puts it back', async () => {
    const [established] = (await openMany(1)) as [Socket];
    const [live] = await admin.json<Connection[]>('/api/connections');
    const drainedServer = live!.upstream === first.address ? first : second;
    const otherServer = drainedServer === first ? second : first;
    const drainedBefore = drainedServer.accepted.length;

    const drain = await admin.call('POST', `/api/upstreams/test/${encodeURIComponent(drainedServer.address)}/drain`);
    assert.equal(drain.status, 200, drain.body);
    const stats = await admin.json<Stats>('/api/stats');
    assert.equal(stats.upstreams.find((u) => u.address === drainedServer.address)?.state, 'draining');
    assert.equal(stats.upstreams.find((u) => u.address === otherServer.address)?.state, 'healthy');
    const text = await admin.metrics();
    assert.equal(sampleValue(text, 'tcpproxy_upstream_state', { listener: 'test', upstream: drainedServer.address, state: 'draining' }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { listener: 'test', upstream: drainedServer.address }), 1, 'draining counts as up');

    const whileDrained = await openMany(4);
    assert.equal(drainedServer.accepted.length, drainedBefore, 'no new connection reached the drained upstream');
    await roundTrip(established, Buffer.alloc(10_000, 3));
    await closeAll(whileDrained);

    // Not written as %3A: the raw form is accepted too.
    const enable = await admin.call('POST', `/api/upstreams/test/${drainedServer.address}/enable`);
    assert.equal(enable.status, 200, enable.body);
    const afterEnable = await openMany(4);
    assert.equal(drainedServer.accepted.length, drainedBefore + 2, 'round robin uses the enabled upstream again');
    assert.equal((await admin.json<Stats>('/api/stats')).upstreams.find((u) => u.address === drainedServer.address)?.state, 'healthy');
    await closeAll([established, ...afterEnable]);
    await proxy.waitForLog(() => proxy.accessLog().length === 9);
    assert.ok(
      proxy.accessLog().every((l) => l.event === 'close'),
      'no connection was refused',
    );
  });
});
