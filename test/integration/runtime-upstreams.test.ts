/**
 * Run-time upstream management end to end: the admin API of a real ProxyRuntime changes a
 * listener's upstreams (add, weight, max_connections, remove) while real connections flow,
 * without a reload; a removed upstream gets no new connection while one it carries finishes
 * intact; a reload puts the config file's upstreams back and says so in the log.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { buildSnapshot } from '../../src/config/load.js';
import type { UpstreamView } from '../../src/admin/admin-runtime.js';
import { request } from '../admin/http-client.js';
import { AdminClient } from '../helpers/ops.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { startServer, type TestServer } from '../helpers/servers.js';
import { readToEnd, sha256, connect } from '../helpers/sockets.js';

const TOKEN = 'runtime-upstreams';

/** An upstream that names itself in one line, then echoes (so a held connection can carry data). */
function startNamedEcho(name: string): Promise<TestServer> {
  return startServer((socket) => {
    socket.write(`${name}\n`);
    socket.pipe(socket);
  });
}

async function send(admin: AdminClient, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await request(admin.port, method, path, { headers, ...(body !== undefined && { body: JSON.stringify(body) }) });
  return { status: response.status, json: JSON.parse(response.body) as Record<string, unknown> };
}

/** Who answers a fresh connection (its first line); the connection is then closed. */
async function who(port: number, localAddress?: string): Promise<string> {
  const socket = await connect(port, '127.0.0.1', localAddress);
  const [first] = (await once(socket, 'data')) as [Buffer];
  socket.destroy();
  return first.toString().split('\n')[0]!;
}

async function tallyOf(port: number, count: number): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const name = await who(port);
    seen[name] = (seen[name] ?? 0) + 1;
  }
  return seen;
}

describe('run-time upstream management on the real runtime', { timeout: 60_000 }, () => {
  const servers: Record<string, TestServer> = {};
  let proxy: TestProxy;
  let admin: AdminClient;
  let raw: Record<string, unknown>;
  const port = (listener: string): number => proxy.runtime.listenerAddress(listener)!.port;
  const upstreamsPath = (listener: string) => `/api/listeners/${listener}/upstreams`;
  const upstreamPath = (listener: string, address: string) => `${upstreamsPath(listener)}/${encodeURIComponent(address)}`;

  before(async () => {
    for (const name of ['A', 'B', 'C']) servers[name] = await startNamedEcho(name);
    raw = {
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [
        { name: 'main', listen: '127.0.0.1:0', upstreams: [servers.A!.address, servers.B!.address], balance: 'round_robin' },
        { name: 'sticky', listen: '127.0.0.1:0', upstreams: [servers.A!.address, servers.B!.address], balance: 'source_hash' },
      ],
    };
    proxy = await startProxy(raw);
    admin = new AdminClient(proxy.runtime.adminAddress()!.port, TOKEN);
  });
  after(async () => {
    await proxy.stop();
    for (const server of Object.values(servers)) await server.close();
  });

  it('lists a listener’s upstreams; refuses without the token, with a bad body, or for an unknown listener', async () => {
    const list = await admin.json<UpstreamView[]>(upstreamsPath('main'));
    assert.deepEqual(
      list.map((u) => [u.address, u.weight, u.max_connections]),
      [
        [servers.A!.address, 1, null],
        [servers.B!.address, 1, null],
      ],
    );
    assert.equal((await new AdminClient(admin.port).call('GET', upstreamsPath('main'))).status, 401);
    const anonymous = await new AdminClient(admin.port).call('POST', upstreamsPath('main'), { 'Content-Type': 'application/json' });
    assert.equal(anonymous.status, 401);
    assert.equal((await send(admin, 'GET', upstreamsPath('nope'))).status, 404);
    const wrongType = await request(admin.port, 'POST', upstreamsPath('main'), {
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'text/plain' },
      body: '{}',
    });
    assert.equal(wrongType.status, 415);
    const notJson = await request(admin.port, 'POST', upstreamsPath('main'), {
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: '{"address":',
    });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body, /invalid JSON/);
    const crossSite = await request(admin.port, 'PATCH', upstreamPath('main', servers.A!.address), {
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', Origin: 'https://evil.example' },
      body: '{"weight": 9}',
    });
    assert.equal(crossSite.status, 403);
    const tooLarge = await request(admin.port, 'POST', upstreamsPath('main'), {
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ address: servers.C!.address, pad: 'x'.repeat(70_000) }),
    });
    assert.equal(tooLarge.status, 413);
    // The same without a Content-Length (chunked): counted while read, refused past the limit.
    const chunked = await request(admin.port, 'POST', upstreamsPath('main'), {
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
      body: JSON.stringify({ address: servers.C!.address, pad: 'x'.repeat(70_000) }),
    });
    assert.equal(chunked.status, 413);
    const badAddress = await send(admin, 'POST', upstreamsPath('main'), { address: '127.0.0.1' });
    assert.equal(badAddress.status, 400);
    assert.match(String(badAddress.json.error), /^address: expected HOST:PORT/);
    const badWeight = await send(admin, 'PATCH', upstreamPath('main', servers.A!.address), { weight: 0 });
    assert.equal(badWeight.status, 400);
    assert.match(String(badWeight.json.error), /^weight:/);
    const nothing = await send(admin, 'PATCH', upstreamPath('main', servers.A!.address), {});
    assert.equal(nothing.status, 400);
    const unknownKey = await send(admin, 'PATCH', upstreamPath('main', servers.A!.address), { wieght: 2 });
    assert.equal(unknownKey.status, 400);
    const unknown = await send(admin, 'DELETE', upstreamPath('main', '127.0.0.1:1'));
    assert.deepEqual([unknown.status, unknown.json.code], [404, 'unknown_upstream']);
    const exists = await send(admin, 'POST', upstreamsPath('main'), { address: servers.A!.address });
    assert.deepEqual([exists.status, exists.json.code], [409, 'upstream_exists']);
    assert.equal((await send(admin, 'POST', upstreamsPath('nope'), { address: servers.C!.address })).status, 404);
  });

  it('a weight change takes effect at once: round_robin gives the new shares', async () => {
    assert.deepEqual(await tallyOf(port('main'), 4), { A: 2, B: 2 });
    const changed = await send(admin, 'PATCH', upstreamPath('main', servers.A!.address), { weight: 3 });
    assert.equal(changed.status, 200);
    assert.deepEqual((changed.json.upstream as UpstreamView).weight, 3);
    const line = await proxy.waitForLog((l) => l.event === 'admin' && l.action === 'upstream_update');
    assert.deepEqual([line.listener, line.upstream, line.weight], ['main', servers.A!.address, 3]);
    assert.deepEqual(await tallyOf(port('main'), 8), { A: 6, B: 2 });
  });

  it('an added upstream takes connections; a removed one takes no new ones while its own finish intact', async () => {
    const added = await send(admin, 'POST', upstreamsPath('main'), { address: servers.C!.address, weight: 4, max_connections: 10 });
    assert.equal(added.status, 201);
    assert.deepEqual(added.json.upstream, {
      address: servers.C!.address,
      weight: 4,
      max_connections: 10,
      endpoints: [{ address: servers.C!.address, state: 'healthy', active: 0 }],
    });
    await proxy.waitForLog((l) => l.event === 'admin' && l.action === 'upstream_add' && l.upstream === servers.C!.address);
    // Weights 3:1:4 in every 8 connections.
    assert.deepEqual(await tallyOf(port('main'), 8), { A: 3, B: 1, C: 4 });

    // Hold one connection on C, then remove C.
    let held: Socket | undefined;
    for (let i = 0; i < 8 && held === undefined; i++) {
      const socket = await connect(port('main'));
      const [first] = (await once(socket, 'data')) as [Buffer];
      if (first.toString() === 'C\n') held = socket;
      else socket.destroy();
    }
    assert.ok(held, 'a connection to C');
    const acceptedByC = servers.C!.accepted.length;
    const removed = await send(admin, 'DELETE', upstreamPath('main', servers.C!.address));
    assert.equal(removed.status, 200);
    assert.deepEqual((removed.json.upstream as UpstreamView).endpoints, [{ address: servers.C!.address, state: 'removed', active: 1 }]);
    await proxy.waitForLog((l) => l.event === 'admin' && l.action === 'upstream_remove');

    const after = await tallyOf(port('main'), 8);
    assert.deepEqual(after, { A: 6, B: 2 });
    assert.equal(servers.C!.accepted.length, acceptedByC, 'C got no new connection');
    // The held connection still carries data both ways, unchanged, to its end.
    const payload = randomBytes(512 * 1024);
    const echoed = readToEnd(held);
    held.end(payload);
    assert.equal(sha256(await echoed), sha256(payload));
    const close = await proxy.waitForLog((l) => l.event === 'close' && l.upstream === servers.C!.address && l.bytes_from_client === payload.length);
    assert.equal(close.reason, 'client_closed');
    assert.deepEqual(
      (await admin.json<UpstreamView[]>(upstreamsPath('main'))).map((u) => u.address),
      [servers.A!.address, servers.B!.address],
    );
  });

  it('the last upstream cannot be removed', async () => {
    const list = await admin.json<UpstreamView[]>(upstreamsPath('sticky'));
    assert.equal(list.length, 2);
    // (sticky keeps both; a listener reduced to one refuses to lose it)
    const solo = await send(admin, 'DELETE', upstreamPath('main', servers.B!.address));
    assert.equal(solo.status, 200);
    const last = await send(admin, 'DELETE', upstreamPath('main', servers.A!.address));
    assert.deepEqual([last.status, last.json.code], [409, 'last_upstream']);
    assert.equal((await send(admin, 'POST', upstreamsPath('main'), { address: servers.B!.address })).status, 201);
  });

  it('source_hash: clients stay put, some move to an added upstream, and all come back when it goes', async () => {
    const clients = Array.from({ length: 60 }, (_, i) => `127.0.${1 + (i >> 6)}.${1 + (i & 63)}`);
    const before = [];
    for (const ip of clients) before.push(await who(port('sticky'), ip));
    assert.equal((await send(admin, 'POST', upstreamsPath('sticky'), { address: servers.C!.address })).status, 201);
    const during = [];
    for (const ip of clients) during.push(await who(port('sticky'), ip));
    assert.ok(during.includes('C'), 'the added upstream gets its share of clients');
    for (const ip of clients.slice(0, 10)) assert.equal(await who(port('sticky'), ip), during[clients.indexOf(ip)], `${ip} sticks`);
    assert.equal((await send(admin, 'DELETE', upstreamPath('sticky', servers.C!.address))).status, 200);
    const afterwards = [];
    for (const ip of clients) afterwards.push(await who(port('sticky'), ip));
    assert.deepEqual(afterwards, before);
  });

  it('a reload puts the config file’s upstreams back and says so loudly', async () => {
    assert.equal((await send(admin, 'PATCH', upstreamPath('sticky', servers.B!.address), { weight: 5, max_connections: 3 })).status, 200);
    const result = await proxy.runtime.reload(buildSnapshot({ log: { level: 'info' }, ...raw }));
    assert.deepEqual(result, { ok: true });
    const warning = await proxy.waitForLog((l) => l.event === 'reload' && l.listener === 'sticky' && Array.isArray(l.discarded_upstream_changes));
    assert.equal(warning.level, 'warn');
    assert.match(String(warning.msg), /config file wins/);
    assert.deepEqual(warning.discarded_upstream_changes, [
      `add ${servers.C!.address} weight 1`,
      `remove ${servers.C!.address}`,
      `set ${servers.B!.address} weight 5 max_connections 3`,
    ]);
    const list = await admin.json<UpstreamView[]>(upstreamsPath('sticky'));
    assert.deepEqual(
      list.map((u) => [u.address, u.weight, u.max_connections]),
      [
        [servers.A!.address, 1, null],
        [servers.B!.address, 1, null],
      ],
    );
    const main = await admin.json<UpstreamView[]>(upstreamsPath('main'));
    assert.deepEqual(
      main.map((u) => [u.address, u.weight]),
      [
        [servers.A!.address, 1],
        [servers.B!.address, 1],
      ],
    );
  });
});
