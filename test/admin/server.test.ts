import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { once } from 'node:events';
import { pino } from 'pino';
import { AdminServer } from '../../src/admin/server.js';
import { FakeRuntime } from './fake-runtime.js';
import { IPV6_LOOPBACK, requires } from '../helpers/requirements.js';
import { request } from './http-client.js';
import { sampleValue } from './prometheus-text.js';

const T = { timeout: 15_000 };
const logger = pino({ level: 'silent' });

async function startAdmin(t: TestContext, runtime = new FakeRuntime(), token?: string) {
  const server = new AdminServer({ listen: { host: '127.0.0.1', port: 0 }, token, runtime, logger });
  const { port } = await server.start();
  t.after(() => server.close());
  return { server, runtime, port };
}

function connection(id: string, bytes: number, listener = 'main') {
  return { id, listener, client: '127.0.0.1:40000', upstream: '127.0.0.1:9000', age_ms: 1000, bytes_from_client: bytes, bytes_to_client: bytes };
}

test('GET /healthz and /readyz', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  const health = await request(port, 'GET', '/healthz');
  assert.equal(health.status, 200);
  assert.equal(health.body, 'ok\n');
  assert.equal((await request(port, 'GET', '/readyz')).status, 200);
  runtime.isReady = false;
  const notReady = await request(port, 'GET', '/readyz');
  assert.equal(notReady.status, 503);
  assert.equal(notReady.body, 'not ready\n');
});

test('GET /metrics serves the runtime exposition', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  runtime.proxyMetrics.listenerMetrics('main').bridged();
  runtime.proxyMetrics.listenerMetrics('main').rejected('schedule');
  const response = await request(port, 'GET', '/metrics');
  assert.equal(response.status, 200);
  assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.equal(sampleValue(response.body, 'tcpproxy_connections_active', { listener: 'main' }), 1);
  assert.equal(sampleValue(response.body, 'tcpproxy_rejections_total', { listener: 'main', reason: 'schedule' }), 1);
  assert.equal(sampleValue(response.body, 'tcpproxy_upstream_up', { listener: 'main', upstream: '[::1]:9000' }), 1);
});

test('GET /api/stats returns the JSON snapshot', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  runtime.proxyMetrics.listenerMetrics('main').bridged();
  const response = await request(port, 'GET', '/api/stats');
  assert.equal(response.status, 200);
  assert.match(String(response.headers['content-type']), /^application\/json/);
  assert.equal(response.headers['cache-control'], 'no-store');
  const stats = JSON.parse(response.body) as { listeners: { name: string; active: number }[]; upstreams: unknown[]; uptime_s: number };
  assert.equal(stats.listeners[0]!.name, 'main');
  assert.equal(stats.listeners[0]!.active, 1);
  assert.equal(stats.upstreams.length, 2);
  assert.equal(stats.uptime_s, 1);
});

test('GET /api/connections lists, filters, sorts and limits; bad queries are 400', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  runtime.open = [connection('c1', 10), connection('c2', 300), connection('c3', 20, 'other'), connection('c4', 5)];
  const all = JSON.parse((await request(port, 'GET', '/api/connections')).body) as { id: string }[];
  assert.deepEqual(
    all.map((c) => c.id),
    ['c1', 'c2', 'c3', 'c4'],
  );
  assert.deepEqual(Object.keys(all[0]!).sort(), ['age_ms', 'bytes_from_client', 'bytes_to_client', 'client', 'id', 'listener', 'upstream']);
  const top = JSON.parse((await request(port, 'GET', '/api/connections?sort=bytes&limit=2&listener=main')).body) as { id: string }[];
  assert.deepEqual(
    top.map((c) => c.id),
    ['c2', 'c1'],
  );
  for (const query of ['limit=0', 'limit=-1', 'limit=abc', 'sort=size', 'bogus=1']) {
    const response = await request(port, 'GET', `/api/connections?${query}`);
    assert.equal(response.status, 400, query);
    assert.ok((JSON.parse(response.body) as { error?: string }).error, query);
  }
});

test('DELETE /api/connections/:id closes one connection or answers 404', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  runtime.open = [connection('c1', 1), connection('a/b', 1)];
  const closed = await request(port, 'DELETE', '/api/connections/c1');
  assert.equal(closed.status, 200);
  assert.deepEqual(JSON.parse(closed.body), { ok: true, closed: 'c1' });
  assert.equal((await request(port, 'DELETE', '/api/connections/c1')).status, 404);
  assert.equal((await request(port, 'DELETE', '/api/connections/a%2Fb')).status, 200);
  assert.deepEqual(runtime.calls, ['close c1', 'close c1', 'close a/b']);
  assert.equal((await request(port, 'DELETE', '/api/connections/%E0%A4%A')).status, 400);
  assert.equal((await request(port, 'DELETE', '/api/connections/')).status, 404);
});

test('POST /api/reload: 200 when applied, 400 with the error when the new config is invalid', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  const ok = await request(port, 'POST', '/api/reload');
  assert.equal(ok.status, 200);
  assert.deepEqual(JSON.parse(ok.body), { ok: true });
  runtime.reloadResult = { ok: false, error: 'listeners[0].listen: expected HOST:PORT' };
  const bad = await request(port, 'POST', '/api/reload', { body: '{}', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.body), { ok: false, error: 'listeners[0].listen: expected HOST:PORT', code: 'reload_failed' });
  assert.deepEqual(runtime.calls, ['reload', 'reload']);
});

test('POST /api/upstreams/:listener/:address/drain|enable', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  assert.equal((await request(port, 'POST', '/api/upstreams/main/127.0.0.1%3A9000/drain')).status, 200);
  assert.equal(runtime.upstreams[0]?.state, 'draining');
  assert.equal((await request(port, 'POST', '/api/upstreams/main/127.0.0.1:9000/enable')).status, 200);
  assert.equal(runtime.upstreams[0]?.state, 'healthy');
  const ipv6 = await request(port, 'POST', '/api/upstreams/main/[::1]:9000/drain');
  assert.equal(ipv6.status, 200);
  assert.deepEqual(JSON.parse(ipv6.body), { ok: true, listener: 'main', upstream: '[::1]:9000', action: 'drain' });
  assert.equal(runtime.upstreams[1]?.state, 'draining');
  assert.equal((await request(port, 'POST', '/api/upstreams/main/%5B%3A%3A1%5D%3A9000/enable')).status, 200);
  assert.equal(runtime.upstreams[1]?.state, 'healthy');

  const unknownListener = await request(port, 'POST', '/api/upstreams/nope/127.0.0.1%3A9000/drain');
  assert.equal(unknownListener.status, 404);
  assert.match((JSON.parse(unknownListener.body) as { error: string }).error, /unknown listener "nope"/);
  const unknownUpstream = await request(port, 'POST', '/api/upstreams/main/10.0.0.1%3A1/drain');
  assert.equal(unknownUpstream.status, 404);
  assert.match((JSON.parse(unknownUpstream.body) as { error: string }).error, /unknown upstream "10.0.0.1:1"/);
  assert.equal((await request(port, 'POST', '/api/upstreams/main/127.0.0.1%3A9000/explode')).status, 404);
  const wrongMethod = await request(port, 'GET', '/api/upstreams/main/127.0.0.1%3A9000/drain');
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.allow, 'POST');
});

test('unknown routes are 404, wrong methods 405 with Allow, bad targets 400', T, async (t) => {
  const { port } = await startAdmin(t);
  for (const path of ['/nope', '/api', '/api/stats/', '/healthz/x', '/api/connections/a/b']) {
    const response = await request(port, 'GET', path);
    assert.equal(response.status, 404, path);
    assert.deepEqual(JSON.parse(response.body), { error: 'not found', code: 'not_found' });
  }
  const postHealth = await request(port, 'POST', '/healthz');
  assert.equal(postHealth.status, 405);
  assert.equal(postHealth.headers.allow, 'GET');
  const deleteStats = await request(port, 'DELETE', '/api/stats');
  assert.equal(deleteStats.status, 405);
  const putConnection = await request(port, 'PUT', '/api/connections/c1');
  assert.equal(putConnection.status, 405);
  assert.equal(putConnection.headers.allow, 'DELETE');
  assert.equal((await request(port, 'GET', '/%zz')).status, 400);
  assert.equal((await request(port, 'OPTIONS', '*')).status, 400);
});

test('a throwing handler is a 500 and the server keeps serving', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  runtime.statsFailure = new Error('boom');
  const failed = await request(port, 'GET', '/api/stats');
  assert.equal(failed.status, 500);
  assert.deepEqual(JSON.parse(failed.body), { error: 'internal error', code: 'internal' });
  runtime.reload = () => Promise.reject(new Error('async boom'));
  assert.equal((await request(port, 'POST', '/api/reload')).status, 500);
  assert.equal((await request(port, 'GET', '/healthz')).status, 200);
});

test('request bodies are ignored, large ones refused with 413', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  // Declares a megabyte, sends a little: the answer comes at once, without waiting for the rest.
  const big = await request(port, 'POST', '/api/reload', { headers: { 'content-length': '1000000' }, body: 'x'.repeat(1000) });
  assert.equal(big.status, 413);
  assert.equal(big.headers.connection, 'close');
  assert.deepEqual(runtime.calls, []);
  assert.equal((await request(port, 'POST', '/api/reload', { body: 'x'.repeat(100) })).status, 200);
});

test('a malformed HTTP request gets 400 and does not disturb the server', T, async (t) => {
  const { port } = await startAdmin(t);
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.setEncoding('utf8');
  let answer = '';
  socket.on('data', (chunk: string) => (answer += chunk));
  await once(socket, 'connect');
  socket.write('NOT HTTP AT ALL\r\n\r\n');
  await once(socket, 'close');
  assert.match(answer, /^HTTP\/1\.1 400/);
  assert.equal((await request(port, 'GET', '/healthz')).status, 200);
});

test('with a token: 401 without or with a wrong one; probes and the page stay open', T, async (t) => {
  const { port } = await startAdmin(t, new FakeRuntime(), 's3cret-token');
  for (const [method, path] of [
    ['GET', '/api/stats'],
    ['GET', '/metrics'],
    ['GET', '/api/connections'],
    ['DELETE', '/api/connections/c1'],
    ['POST', '/api/reload'],
    ['POST', '/api/upstreams/main/127.0.0.1%3A9000/drain'],
  ] as const) {
    const missing = await request(port, method, path);
    assert.equal(missing.status, 401, `${method} ${path}`);
    assert.match(String(missing.headers['www-authenticate']), /^Bearer/);
  }
  for (const authorization of ['Bearer wrong', 'Bearer s3cret-token-longer', 'Bearer s3cret-toke', 'Basic s3cret-token', 's3cret-token', 'Bearer']) {
    const response = await request(port, 'GET', '/api/stats', { headers: { authorization } });
    assert.equal(response.status, 401, authorization);
  }
  assert.equal((await request(port, 'GET', '/api/stats', { headers: { authorization: 'Bearer s3cret-token' } })).status, 200);
  assert.equal((await request(port, 'GET', '/metrics', { headers: { authorization: 'bearer s3cret-token' } })).status, 200);
  for (const path of ['/healthz', '/readyz', '/']) assert.equal((await request(port, 'GET', path)).status, 200, path);
  // Unknown routes are 404 whether or not the token is given: routing comes first.
  assert.equal((await request(port, 'GET', '/nope')).status, 404);
});

test('state-changing requests from another origin are refused', T, async (t) => {
  const { runtime, port } = await startAdmin(t);
  const crossSite = await request(port, 'POST', '/api/reload', { headers: { origin: 'http://evil.example' } });
  assert.equal(crossSite.status, 403);
  assert.equal((await request(port, 'POST', '/api/reload', { headers: { origin: 'null' } })).status, 403);
  assert.deepEqual(runtime.calls, []);
  const sameSite = await request(port, 'POST', '/api/reload', { headers: { origin: `http://127.0.0.1:${port}` } });
  assert.equal(sameSite.status, 200);
  // Reads are not state-changing, a cross-origin GET is fine (the browser withholds the answer anyway).
  assert.equal((await request(port, 'GET', '/api/stats', { headers: { origin: 'http://evil.example' } })).status, 200);
});

test('GET / serves the self-contained dashboard with a strict CSP; HEAD has no body', T, async (t) => {
  const { port } = await startAdmin(t);
  const page = await request(port, 'GET', '/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.match(page.body, /<script>/);
  assert.doesNotMatch(page.body, /(src|href)="https?:/);
  const csp = String(page.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  const head = await request(port, 'HEAD', '/');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
});

test('IPv6 loopback, start() failing on a port in use, close() with an idle keep-alive client', T, async (t) => {
  if (!(await requires(t, IPV6_LOOPBACK))) return;
  const runtime = new FakeRuntime();
  const first = new AdminServer({ listen: { host: '::1', port: 0 }, runtime, logger });
  const { address, port } = await first.start();
  t.after(() => first.close());
  assert.equal(address, '::1');
  assert.equal((await request(port, 'GET', '/healthz', { host: '::1' })).status, 200);
  const second = new AdminServer({ listen: { host: '::1', port }, runtime, logger });
  await assert.rejects(second.start(), { code: 'EADDRINUSE' });
  await second.close();

  // A keep-alive connection left open by a client (a browser, say) must not hold close() up.
  const socket = connect(port, '::1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await once(socket, 'data');
  const started = Date.now();
  await first.close();
  // Waiting for the idle connection would take Node's keep-alive timeout (5 s) at least: a
  // timer's lower bound, so only a close() that waited can reach it, however busy the machine.
  assert.ok(Date.now() - started < 5_000, 'close() waited for the idle connection');
  await once(socket, 'close');
});
