/**
 * `--workers 2` (and `workers: 2` in the config) end to end through the CLI process: both
 * workers serve (access-log `pid`s), the primary's admin API aggregates both (stats, metrics,
 * connections, close, drain, reload), a killed worker is restarted, and SIGTERM takes every
 * worker down cleanly.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { ConfigFile, roundTrip, sampleValue, spawnProxy, type Connection, type ProxyProcess, type Stats } from '../helpers/ops.js';
import type { LogLine } from '../helpers/proxy.js';
import { eventually } from '../helpers/wait.js';
import { closed, connect, readToEnd } from '../helpers/sockets.js';

/** Worker ids prefix connection ids ("2-17"). */
function workerOf(connection: Connection): string {
  return connection.id.split('-')[0]!;
}

function config(upstreams: string[], extra: Record<string, unknown> = {}) {
  return { admin: { listen: '127.0.0.1:0' }, shutdown_timeout: '2s', listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams }], ...extra };
}

describe('--workers 2', { timeout: 60_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let file: ConfigFile;
  let proxy: ProxyProcess;
  const workerPids = (): Set<number> => new Set(proxy.logs.filter((l) => l.event === 'listening' && typeof l.worker === 'number').map((l) => l.pid as number));

  before(async () => {
    [a, b] = await Promise.all([startEchoServer(), startEchoServer()]);
    file = await ConfigFile.create(config([a.address]));
    proxy = await spawnProxy(file, { args: ['--workers', '2'], listening: 2, admin: true });
  });
  after(async () => {
    await proxy.kill();
    await file.remove();
    await a.close();
    await b.close();
  });

  /**
   * Opens connections in concurrent batches until both workers hold at least one: the kernel
   * spreads accepts, but not in a fixed pattern. Each is checked by one echo round trip.
   */
  async function openOnBothWorkers(): Promise<Socket[]> {
    const clients: Socket[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const opened = await Promise.all(Array.from({ length: 10 }, () => connect(proxy.port)));
      await Promise.all(opened.map((client) => roundTrip(client, 'x')));
      clients.push(...opened);
      const workers = new Set((await proxy.admin!.json<Connection[]>('/api/connections')).map(workerOf));
      if (workers.size === 2) return clients;
    }
    for (const client of clients) client.destroy();
    throw new Error('200 connections all went to one worker');
  }

  async function endAll(clients: Socket[]): Promise<void> {
    await Promise.all(
      clients.map(async (client) => {
        const done = readToEnd(client);
        client.end();
        await done;
      }),
    );
  }

  it('both workers serve, and the primary aggregates stats, metrics and connections', async () => {
    assert.equal(workerPids().size, 2);
    const clients = await openOnBothWorkers();
    const listed = await proxy.admin!.json<Connection[]>('/api/connections');
    assert.equal(listed.length, clients.length);
    assert.equal(new Set(listed.map((c) => c.id)).size, clients.length, 'connection ids are unique across workers');
    const perWorker = new Map<string, number>();
    for (const c of listed) perWorker.set(workerOf(c), (perWorker.get(workerOf(c)) ?? 0) + 1);

    let stats = await proxy.admin!.json<Stats>('/api/stats');
    assert.equal(stats.workers, 2);
    assert.equal(stats.listeners[0]!.active, clients.length);
    assert.equal(stats.upstreams[0]!.active, clients.length);
    let text = await proxy.admin!.metrics();
    assert.equal(sampleValue(text, 'tcpproxy_connections_active', { listener: 'main' }), clients.length);
    assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'from_client' }), clients.length);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { listener: 'main', upstream: a.address }), 1, 'up is a maximum, not a sum');

    await endAll(clients);
    const closes = await proxy.waitForLines((l) => l.event === 'close', clients.length);
    const pids = new Set(closes.map((l) => l.pid as number));
    assert.equal(pids.size, 2, 'both worker processes logged connections');
    assert.deepEqual([...pids].sort(), [...workerPids()].sort());
    assert.deepEqual(
      [...perWorker.values()].sort(),
      [...pids].map((pid) => closes.filter((l) => l.pid === pid).length).sort(),
      'each worker logged the connections it held',
    );

    stats = await proxy.admin!.json<Stats>('/api/stats');
    const main = stats.listeners[0]!;
    assert.equal(main.active, 0);
    assert.equal(main.connections_total, clients.length);
    assert.equal(main.closes.client_closed, clients.length);
    assert.equal(main.bytes_from_client, clients.length);
    assert.equal(stats.upstreams[0]!.connections_total, clients.length);
    text = await proxy.admin!.metrics();
    assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'main' }), clients.length);
    assert.equal(sampleValue(text, 'tcpproxy_closes_total', { listener: 'main', reason: 'client_closed' }), clients.length);
    assert.equal(sampleValue(text, 'tcpproxy_connection_duration_seconds_count', { listener: 'main' }), clients.length);
    assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_total', { listener: 'main', upstream: a.address }), clients.length);
  });

  it('DELETE closes a connection held by a worker; drain and reload reach every worker', async () => {
    const clients = await openOnBothWorkers();
    const listed = await proxy.admin!.json<Connection[]>('/api/connections');
    const victims = new Set<Socket>();
    for (const worker of new Set(listed.map(workerOf))) {
      const victim = listed.find((c) => workerOf(c) === worker)!;
      const client = clients.find((c) => victim.client === `127.0.0.1:${c.localPort}`)!;
      victims.add(client);
      const gone = closed(client);
      const response = await proxy.admin!.call('DELETE', `/api/connections/${victim.id}`);
      assert.equal(response.status, 200, response.body);
      await gone;
      const line = await proxy.waitForLog((l) => l.event === 'close' && l.id === victim.id);
      assert.equal(line.reason, 'admin');
    }
    assert.equal(victims.size, 2);
    assert.equal((await proxy.admin!.call('DELETE', `/api/connections/${listed[0]!.id}`)).status, 404);

    const drain = await proxy.admin!.call('POST', `/api/upstreams/main/${encodeURIComponent(a.address)}/drain`);
    assert.equal(drain.status, 200, drain.body);
    // Every worker drains: with A the only upstream, every new connection is refused, on both workers.
    const refusedBefore = proxy.logs.filter((l) => l.event === 'reject').length;
    const probes = await Promise.all(Array.from({ length: 20 }, () => connect(proxy.port)));
    await Promise.all(probes.map((p) => closed(p)));
    const refused = (await proxy.waitForLines((l) => l.event === 'reject', refusedBefore + probes.length)).slice(refusedBefore);
    assert.ok(refused.every((l) => l.reason === 'no_upstream'));
    const stats = await proxy.admin!.json<Stats>('/api/stats');
    assert.equal(stats.upstreams[0]!.state, 'draining');
    assert.equal(stats.listeners[0]!.rejections.no_upstream, probes.length);

    // Reload to B: every worker switches; the open connections (to A) continue.
    await file.write(config([b.address]));
    const reload = await proxy.admin!.call('POST', '/api/reload');
    assert.equal(reload.status, 200, reload.body);
    const reloaded = await proxy.waitForLines((l) => l.event === 'reload' && l.ok === true, 2);
    assert.equal(new Set(reloaded.map((l) => l.pid)).size, 2, 'both workers reloaded');
    const bBefore = b.accepted.length;
    const fresh = await Promise.all(Array.from({ length: 10 }, () => connect(proxy.port)));
    await Promise.all(fresh.map((client) => roundTrip(client, 'to b')));
    assert.equal(b.accepted.length, bBefore + fresh.length);
    const open = clients.filter((client) => !victims.has(client));
    await Promise.all(open.map((client) => roundTrip(client, 'still to a')));
    await endAll([...open, ...fresh]);
    assert.deepEqual(
      (await proxy.admin!.json<Stats>('/api/stats')).upstreams.map((u) => [u.address, u.state]),
      [[b.address, 'healthy']],
    );
  });

  it('a killed worker is restarted and serves again', async () => {
    const before = workerPids();
    const victim = [...before][0]!;
    process.kill(victim, 'SIGKILL');
    const exit = await proxy.waitForLog((l) => l.event === 'worker_exit');
    assert.equal(exit.signal, 'SIGKILL');
    const restarted: LogLine = await proxy.waitForLog((l) => l.event === 'listening' && !before.has(l.pid as number));
    assert.equal(workerPids().size, 3);
    const stats = await eventually(async () => {
      const s = await proxy.admin!.json<Stats>('/api/stats');
      return s.workers === 2 ? s : undefined;
    }, 'two workers answering again');
    assert.equal(stats.listeners[0]!.name, 'main');
    // Serving: keep connecting until the new worker has taken one.
    const clients: Socket[] = [];
    await eventually(async () => {
      const batch = await Promise.all(Array.from({ length: 5 }, () => connect(proxy.port)));
      await Promise.all(batch.map((client) => roundTrip(client, 'new worker?')));
      clients.push(...batch);
      const listed = await proxy.admin!.json<Connection[]>('/api/connections');
      return listed.some((c) => workerOf(c) === String(restarted.worker)) ? true : undefined;
    }, 'a connection on the restarted worker');
    await endAll(clients);
  });

  it('SIGTERM on the primary drains every worker and exits 0', async () => {
    const client = await connect(proxy.port);
    await roundTrip(client, 'last');
    proxy.child.kill('SIGTERM');
    const draining = await proxy.waitForLines((l) => l.event === 'shutdown', 2);
    assert.equal(
      draining.reduce((sum, l) => sum + (l.active as number), 0),
      1,
    );
    const reply = readToEnd(client);
    client.end('bye');
    assert.equal((await reply).toString(), 'bye');
    assert.equal(await proxy.exited, 0);
    for (const pid of workerPids()) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
  });
});

describe('workers and signals sent to the whole process group', { timeout: 30_000 }, () => {
  it('a worker survives SIGHUP (e.g. `pkill -HUP tcpproxy` reaches every process)', async () => {
    const upstream = await startEchoServer();
    const file = await ConfigFile.create(config([upstream.address], { workers: 2 }));
    const proxy = await spawnProxy(file, { listening: 2, admin: true });
    try {
      const workers = proxy.logs.filter((l) => l.event === 'listening').map((l) => l.pid as number);
      process.kill(workers[0]!, 'SIGHUP');
      const reload = await proxy.admin!.call('POST', '/api/reload');
      assert.equal(reload.status, 200, reload.body);
      const reloaded = (await proxy.waitForLines((l) => l.event === 'reload' && l.ok === true, 2, 3_000)).map((l) => l.pid as number);
      assert.deepEqual(reloaded.sort(), workers.sort(), 'both original workers are alive and reloaded');
      assert.ok(!proxy.logs.some((l) => l.event === 'worker_exit'));
    } finally {
      await proxy.kill();
      await file.remove();
      await upstream.close();
    }
  });
});
