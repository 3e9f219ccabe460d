/**
 * Run-time upstream changes with `--workers 2`, through the CLI process: the primary applies a
 * change on every worker (logged once), a worker restarted after a crash gets the changes
 * replayed, and a reload puts the config file's upstreams back on all of them.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from '../admin/http-client.js';
import { ConfigFile, roundTrip, spawnProxy, type Connection, type ProxyProcess, type Stats } from '../helpers/ops.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { eventually } from '../helpers/wait.js';
import { connect } from '../helpers/sockets.js';

function workerOf(connection: Connection): string {
  return connection.id.split('-')[0]!;
}

describe('run-time upstream changes with --workers 2', { timeout: 180_000 }, () => {
  let a: TestServer;
  let b: TestServer;
  let file: ConfigFile;
  let proxy: ProxyProcess;

  before(async () => {
    [a, b] = await Promise.all([startEchoServer(), startEchoServer()]);
    file = await ConfigFile.create({
      admin: { listen: '127.0.0.1:0' },
      shutdown_timeout: '2s',
      listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [a.address] }],
    });
    proxy = await spawnProxy(file, { args: ['--workers', '2'], listening: 2, admin: true, startTimeoutMs: 60_000 });
  });
  after(async () => {
    await proxy?.kill();
    await file?.remove();
    await a.close();
    await b.close();
  });

  async function change(method: string, path: string, body?: unknown): Promise<number> {
    const response = await request(proxy.admin!.port, method, path, {
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    return response.status;
  }

  /**
   * Opens connections in batches until every worker in `workers` (or any two) holds one;
   * answers the upstream each worker's connections went to, then closes them.
   */
  async function upstreamsByWorker(wanted?: string): Promise<Map<string, Set<string>>> {
    const clients: Socket[] = [];
    try {
      return await eventually(async () => {
        const batch = await Promise.all(Array.from({ length: 8 }, () => connect(proxy.port)));
        await Promise.all(batch.map((client) => roundTrip(client, 'x')));
        clients.push(...batch);
        const byWorker = new Map<string, Set<string>>();
        for (const c of await proxy.admin!.json<Connection[]>('/api/connections')) {
          if (!byWorker.has(workerOf(c))) byWorker.set(workerOf(c), new Set());
          byWorker.get(workerOf(c))!.add(String(c.upstream));
        }
        const done = wanted === undefined ? byWorker.size === 2 : byWorker.has(wanted);
        return done ? byWorker : undefined;
      }, 'connections on the workers wanted');
    } finally {
      for (const client of clients) client.destroy();
      await eventually(async () => ((await proxy.admin!.json<Connection[]>('/api/connections')).length === 0 ? true : undefined), 'connections closed');
    }
  }

  it('a change reaches every worker and is logged once', async () => {
    assert.equal(await change('POST', '/api/listeners/main/upstreams', { address: b.address }), 201);
    assert.equal(await change('DELETE', `/api/listeners/main/upstreams/${encodeURIComponent(a.address)}`), 200);
    const byWorker = await upstreamsByWorker();
    for (const [worker, upstreams] of byWorker) assert.deepEqual([...upstreams], [b.address], `worker ${worker}`);
    // Log lines are written in batches: wait for the second one before counting them.
    await proxy.waitForLog((l) => l.event === 'admin' && l.action === 'upstream_remove');
    const lines = proxy.logs.filter((l) => l.event === 'admin' && typeof l.action === 'string' && String(l.action).startsWith('upstream_'));
    assert.deepEqual(
      lines.map((l) => l.action),
      ['upstream_add', 'upstream_remove'],
    );
  });

  it('a worker restarted after a crash gets the changes replayed', async () => {
    const pids = new Set(proxy.logs.filter((l) => l.event === 'listening' && typeof l.worker === 'number').map((l) => l.pid as number));
    process.kill([...pids][0]!, 'SIGKILL');
    const restarted = await proxy.waitForLog((l) => l.event === 'listening' && typeof l.worker === 'number' && !pids.has(l.pid as number), 60_000);
    await eventually(async () => ((await proxy.admin!.json<Stats>('/api/stats')).workers === 2 ? true : undefined), 'two workers again');
    // The replay follows the new worker's start.
    const replay = await proxy.waitForLog((l) => l.event === 'upstream_replay' && l.worker === restarted.worker, 30_000);
    assert.equal(replay.changes, 2);
    const byWorker = await upstreamsByWorker(String(restarted.worker));
    assert.deepEqual([...byWorker.get(String(restarted.worker))!], [b.address]);
  });

  it('a reload puts the file’s upstreams back on every worker, with a warning from each', async () => {
    assert.equal(await change('POST', '/api/reload'), 200);
    const warnings = await proxy.waitForLines((l) => l.event === 'reload' && Array.isArray(l.discarded_upstream_changes), 2, 30_000);
    assert.equal(warnings.length, 2);
    const byWorker = await upstreamsByWorker();
    for (const [worker, upstreams] of byWorker) assert.deepEqual([...upstreams], [a.address], `worker ${worker}`);
  });
});
