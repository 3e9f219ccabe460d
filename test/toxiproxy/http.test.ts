/**
 * toxiproxy's API over plain HTTP, for what the client library does not show: status codes,
 * error bodies, defaults, PATCH, populate's partial answers, browsers refused; the same API
 * on the admin endpoint (`admin.toxiproxy_api`); and the CLI's toxiproxy-server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LogCollector } from '../helpers/log-collector.js';
import { oneListener, startProxy } from '../helpers/proxy.js';
import { startEchoServer } from '../helpers/servers.js';
import { EchoClient, portOf, toxiproxyAndEcho } from './helpers.js';
import { connect, readToEnd, sha256 } from '../helpers/sockets.js';

interface Answer {
  status: number;
  body: unknown;
}

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

describe('toxiproxy API over HTTP', { timeout: 60_000 }, () => {
  const fixture = toxiproxyAndEcho();
  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> =>
    call(fixture.toxiproxy.url, method, path, body, headers);

  it('answers status codes and {error, status} bodies as toxiproxy does', async () => {
    assert.deepEqual(await api('POST', '/proxies', { listen: '127.0.0.1:0', upstream: fixture.echo.address }), {
      status: 400,
      body: { error: 'missing required field: name', status: 400 },
    });
    assert.deepEqual((await api('POST', '/proxies', { name: 'x' })).body, { error: 'missing required field: upstream', status: 400 });
    assert.equal((await api('POST', '/proxies', '{not json')).status, 400);
    assert.deepEqual((await api('POST', '/proxies', '')).body, { error: 'bad request body: EOF', status: 400 });
    const created = await api('POST', '/proxies', { name: 'h1', listen: '127.0.0.1:0', upstream: fixture.echo.address });
    assert.equal(created.status, 201);
    assert.deepEqual((await api('POST', '/proxies', { name: 'h1', listen: '127.0.0.1:0', upstream: fixture.echo.address })).body, {
      error: 'proxy already exists',
      status: 409,
    });
    assert.deepEqual(await api('GET', '/proxies/nope'), { status: 404, body: { error: 'proxy not found', status: 404 } });
    assert.equal((await api('GET', '/proxies/nope/toxics')).status, 404);
    assert.equal((await api('DELETE', '/proxies/nope')).status, 404);
    assert.deepEqual((await api('POST', '/proxies/h1/toxics', { type: 'latency', stream: 'sideways' })).body, {
      error: 'stream was invalid, can be either upstream or downstream',
      status: 400,
    });
    assert.deepEqual((await api('POST', '/proxies/h1/toxics', { type: 'warp' })).body, { error: 'invalid toxic type', status: 400 });
    assert.equal((await api('POST', '/proxies/h1/toxics', { type: 'latency', attributes: { latency: 'slow' } })).status, 400);
    assert.equal((await api('POST', '/proxies/h1/toxics', { type: 'latency', attributes: { latency: -1 } })).status, 400);
    assert.deepEqual(await api('GET', '/proxies/h1/toxics/nope'), { status: 404, body: { error: 'toxic not found', status: 404 } });
    assert.equal((await api('POST', '/proxies/h1/toxics/nope', { attributes: {} })).status, 404);
    assert.equal((await api('DELETE', '/proxies/h1/toxics/nope')).status, 404);
    assert.equal((await api('PUT', '/proxies/h1')).status, 405);
    assert.equal((await api('GET', '/nothing-here')).status, 404);
  });

  it('fills in toxic defaults, updates with POST or PATCH, deletes with 204', async () => {
    await api('POST', '/proxies', { name: 'h2', listen: '127.0.0.1:0', upstream: fixture.echo.address });
    const added = await api('POST', '/proxies/h2/toxics', { type: 'latency', attributes: { latency: 5, unknown_key: 1 } });
    assert.deepEqual(added, {
      status: 200,
      body: { attributes: { latency: 5, jitter: 0 }, name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 1 },
    });
    const patched = await api('PATCH', '/proxies/h2/toxics/latency_downstream', { attributes: { jitter: 2 }, toxicity: 0.5 });
    assert.deepEqual(patched.body, { attributes: { latency: 5, jitter: 2 }, name: 'latency_downstream', type: 'latency', stream: 'downstream', toxicity: 0.5 });
    const posted = await api('POST', '/proxies/h2/toxics/latency_downstream', { attributes: { latency: 7 } });
    assert.equal((posted.body as { attributes: { latency: number } }).attributes.latency, 7);
    assert.equal((await api('GET', '/proxies/h2/toxics')).status, 200);
    assert.equal((await api('GET', '/proxies/h2/toxics/latency_downstream')).status, 200);
    assert.deepEqual(await api('DELETE', '/proxies/h2/toxics/latency_downstream'), { status: 204, body: undefined });
    assert.deepEqual(await api('DELETE', '/proxies/h2'), { status: 204, body: undefined });
    assert.deepEqual(await api('POST', '/reset'), { status: 204, body: undefined });
  });

  it('updates listen and upstream (restarting the proxy) and reports the port it got', async () => {
    const other = await startEchoServer();
    try {
      const created = (await api('POST', '/proxies', { name: 'h3', listen: '127.0.0.1:0', upstream: fixture.echo.address })).body as { listen: string };
      const moved = (await api('POST', '/proxies/h3', { listen: '127.0.0.1:0', upstream: other.address })).body as { listen: string; upstream: string };
      assert.equal(moved.upstream, other.address);
      assert.notEqual(portOf(moved.listen), 0);
      const client = await EchoClient.open(portOf(moved.listen));
      await client.roundTrip(10);
      assert.equal(other.accepted.length, 1);
      client.close();
      assert.ok(created.listen);
    } finally {
      await other.close();
    }
  });

  it('populate refuses a bad list before changing anything, and answers 201 {proxies}', async () => {
    assert.deepEqual((await api('POST', '/populate', [{ name: 'p1', upstream: fixture.echo.address }, { name: 'p2' }])).body, {
      error: 'missing required field: upstream at proxy 2',
      status: 400,
    });
    assert.equal((await api('GET', '/proxies/p1')).status, 404);
    assert.equal((await api('POST', '/populate', { name: 'p1' })).status, 400);
    const done = await api('POST', '/populate', [{ name: 'p1', listen: '127.0.0.1:0', upstream: fixture.echo.address }]);
    assert.equal(done.status, 201);
    assert.equal((done.body as { proxies: { name: string }[] }).proxies[0]!.name, 'p1');
  });

  it('refuses browsers (403), as toxiproxy does', async () => {
    assert.equal((await api('GET', '/proxies', undefined, { 'User-Agent': 'Mozilla/5.0 (X11)' })).status, 403);
  });

  it('removing a latency toxic mid-stream passes what it held on in order: the data arrives intact', async () => {
    await api('POST', '/proxies', { name: 'h4', listen: '127.0.0.1:0', upstream: fixture.echo.address });
    const port = portOf(((await api('GET', '/proxies/h4')).body as { listen: string }).listen);
    await api('POST', '/proxies/h4/toxics', { name: 'slow-up', type: 'latency', stream: 'upstream', attributes: { latency: 100, jitter: 50 } });
    await api('POST', '/proxies/h4/toxics', { name: 'thin', type: 'bandwidth', stream: 'downstream', attributes: { rate: 2000 } });
    const client = await connect(port);
    const reply = readToEnd(client);
    const payload = randomBytes(2 * 1024 * 1024);
    let written = 0;
    const step = 64 * 1024;
    // Toxics come and go while the payload flows both ways.
    while (written < payload.length) {
      client.write(payload.subarray(written, written + step));
      written += step;
      if (written === 512 * 1024) await api('DELETE', '/proxies/h4/toxics/slow-up');
      if (written === 1024 * 1024)
        await api('POST', '/proxies/h4/toxics', {
          name: 'slicer',
          type: 'slicer',
          stream: 'upstream',
          attributes: { average_size: 4096, size_variation: 1024 },
        });
      if (written === 1536 * 1024) await api('DELETE', '/proxies/h4/toxics/thin');
    }
    client.end();
    assert.equal(sha256(await reply), sha256(payload));
  });
});

describe('toxiproxy API on the admin endpoint', { timeout: 30_000 }, () => {
  it('is served next to /api/* with admin.toxiproxy_api: true, and refused without it', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy({ ...oneListener([echo.address]), admin: { listen: '127.0.0.1:0', toxiproxy_api: true } });
    const plain = await startProxy({ ...oneListener([echo.address]), admin: { listen: '127.0.0.1:0' } });
    try {
      const base = `http://127.0.0.1:${proxy.runtime.adminAddress()!.port}`;
      assert.equal((await call(base, 'GET', '/version')).status, 200);
      const created = await call(base, 'POST', '/proxies', { name: 'via-admin', listen: '127.0.0.1:0', upstream: echo.address });
      assert.equal(created.status, 201);
      assert.equal(
        (await call(base, 'POST', '/proxies', { name: 'test', listen: '127.0.0.1:0', upstream: echo.address })).status,
        409,
        'a config listener name',
      );
      const client = await EchoClient.open(portOf((created.body as { listen: string }).listen));
      await client.roundTrip(10);
      const connections = (await call(base, 'GET', '/api/connections')).body as { listener: string }[];
      assert.ok(
        connections.some((c) => c.listener === 'via-admin'),
        'the proxy is a listener of the runtime',
      );
      client.close();
      const plainBase = `http://127.0.0.1:${plain.runtime.adminAddress()!.port}`;
      assert.equal((await call(plainBase, 'GET', '/version')).status, 404);
    } finally {
      await proxy.stop();
      await plain.stop();
      await echo.close();
    }
  });
});

describe('tcpproxy toxiproxy-server (CLI)', { timeout: 120_000 }, () => {
  it("takes the Go server's single-dash flags and a --config list of proxies", async () => {
    const echo = await startEchoServer();
    const dir = mkdtempSync(join(tmpdir(), 'toxiproxy-'));
    const file = join(dir, 'proxies.json');
    writeFileSync(file, JSON.stringify([{ name: 'from-file', listen: '127.0.0.1:0', upstream: echo.address }]));
    const child = spawn(process.execPath, ['bin/tcpproxy', 'toxiproxy-server', '-host', '127.0.0.1', '-port', '0', '-config', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const logs = new LogCollector({ keepUnparsed: true });
    child.stdout.on('data', (chunk: Buffer) => logs.feed(chunk.toString()));
    try {
      const line = await logs.waitFor((l) => l.event === 'toxiproxy_listening', 60_000);
      const base = `http://127.0.0.1:${line.port as number}`;
      const listed = (await call(base, 'GET', '/proxies')).body as Record<string, { listen: string }>;
      const client = await EchoClient.open(portOf(listed['from-file']!.listen));
      await client.roundTrip(10);
      client.close();
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await echo.close();
    }
  });

  it('exits 2 on a config file that is not a list of proxies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'toxiproxy-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{"name": "x"}');
    const child = spawn(process.execPath, ['bin/tcpproxy', 'toxiproxy-server', '--port', '0', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
    assert.equal(code, 2);
    assert.match(stderr, /bad\.json: bad request body/);
  });
});
