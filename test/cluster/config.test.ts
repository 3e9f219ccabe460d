/**
 * The `cluster` block and `limits_scope`: validation (exit 2 naming the key), `--check`
 * without connecting anywhere, and a Redis missing at start (not an error: on_error).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { buildSnapshot, ConfigError } from '../../src/config/load.js';
import { BIN, ConfigFile } from '../helpers/ops.js';
import { startProxy } from '../helpers/proxy.js';
import { startWhoami } from '../helpers/integration.js';
import { refusedPort, startServer } from '../helpers/servers.js';
import { connect } from '../helpers/sockets.js';

function problems(raw: Record<string, unknown>): string[] {
  try {
    buildSnapshot(raw);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

const listener = (keys: Record<string, unknown> = {}) => ({ name: 'db', listen: '127.0.0.1:0', upstreams: ['127.0.0.1:9'], ...keys });

describe('cluster config', { timeout: 60_000 }, () => {
  it('defaults: prefix tcpproxy, on_error allow, timeout 100 ms, lease 10 s; limits_scope local', () => {
    const snapshot = buildSnapshot({ cluster: { redis: 'redis://127.0.0.1:6379/0' }, listeners: [listener()] });
    assert.deepEqual(snapshot.cluster, { redis: 'redis://127.0.0.1:6379/0', prefix: 'tcpproxy', on_error: 'allow', timeout: 100, lease: 10_000 });
    assert.equal(snapshot.listeners[0]!.limits_scope, 'local');
    const custom = buildSnapshot({
      cluster: { redis: 'rediss://:secret@redis.example:6380/2', prefix: 'edge', on_error: 'deny', timeout: '50ms', lease: '3s' },
      listeners: [listener({ limits_scope: 'cluster' })],
    });
    assert.deepEqual(custom.cluster, { redis: 'rediss://:secret@redis.example:6380/2', prefix: 'edge', on_error: 'deny', timeout: 50, lease: 3_000 });
  });

  it('limits_scope: cluster without a cluster block is an error naming listeners[i].limits_scope', () => {
    assert.deepEqual(problems({ listeners: [listener(), listener({ name: 'b', limits_scope: 'cluster' })] }), [
      'listeners[1].limits_scope: cluster needs a top-level "cluster" block (cluster.redis)',
    ]);
  });

  it('on_limit: queue with limits_scope: cluster is an error naming listeners[i].on_limit', () => {
    const found = problems({ cluster: { redis: 'redis://127.0.0.1' }, listeners: [listener({ limits_scope: 'cluster', on_limit: 'queue' })] });
    assert.equal(found.length, 1);
    assert.match(found[0]!, /^listeners\[0\]\.on_limit: queue cannot be combined with limits_scope: cluster/);
  });

  it('bad values name their key', () => {
    const bad = (cluster: Record<string, unknown>) => problems({ cluster, listeners: [listener()] });
    assert.match(bad({ redis: 'http://127.0.0.1:6379' })[0]!, /^cluster\.redis: expected a redis:\/\/ or rediss:\/\/ URL/);
    assert.match(bad({ redis: '127.0.0.1:6379' })[0]!, /^cluster\.redis: /);
    assert.match(bad({ redis: 'redis://127.0.0.1:6379/zero' })[0]!, /^cluster\.redis: the path must be a database number/);
    assert.match(bad({ redis: 'redis://h', on_error: 'retry' })[0]!, /^cluster\.on_error: expected one of "allow", "deny"/);
    assert.match(bad({ redis: 'redis://h', lease: '100ms' })[0]!, /^cluster\.lease: must be from 1s to 10m/);
    assert.match(bad({ redis: 'redis://h', timeout: '1m' })[0]!, /^cluster\.timeout: must be from 1ms to 10s/);
    assert.match(bad({ redis: 'redis://h', prefix: '' })[0]!, /^cluster\.prefix: /);
    assert.deepEqual(bad({ redis: 'redis://h', port: 1 }), ['cluster.port: unknown key']);
    assert.deepEqual(bad({}), ['cluster.redis: required']);
    assert.match(problems({ listeners: [listener({ limits_scope: 'global' })] })[0]!, /^listeners\[0\]\.limits_scope: expected one of "local", "cluster"/);
  });

  it('--check validates without connecting to Redis; an error exits 2 naming the key', async () => {
    const fakeRedis = await startServer(() => undefined);
    const file = await ConfigFile.create({
      cluster: { redis: `redis://127.0.0.1:${fakeRedis.port}` },
      listeners: [listener({ limits_scope: 'cluster', max_connections: 5 })],
    });
    const bad = await ConfigFile.create({ listeners: [listener({ limits_scope: 'cluster' })] });
    try {
      const run = async (path: string) => {
        const child = spawn(process.execPath, [BIN, '--config', path, '--check'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        const [code] = (await once(child, 'exit')) as [number];
        return { code, out };
      };
      assert.deepEqual(await run(file.path), { code: 0, out: 'ok\n' });
      assert.equal(fakeRedis.accepted.length, 0, '--check opened no connection');
      const failed = await run(bad.path);
      assert.equal(failed.code, 2);
      assert.match(failed.out, /listeners\[0\]\.limits_scope: cluster needs a top-level "cluster" block/);
    } finally {
      await file.remove();
      await bad.remove();
      await fakeRedis.close();
    }
  });

  it('a Redis missing at start is not an error: the proxy starts, says so once, and follows on_error', async () => {
    const upstream = await startWhoami('up', { hold: true });
    const port = await refusedPort();
    const proxy = await startProxy({
      cluster: { redis: `redis://127.0.0.1:${port}`, on_error: 'allow' },
      listeners: [{ name: 'db', listen: '127.0.0.1:0', upstreams: [upstream.address], limits_scope: 'cluster', max_connections: 1 }],
    });
    try {
      const down = await proxy.waitForLog((l) => l.event === 'cluster_down');
      assert.equal(down.on_error, 'allow');
      // Over the limit, yet admitted: nobody can count without Redis, and on_error says allow.
      const clients = await Promise.all([connect(proxy.port), connect(proxy.port)]);
      await Promise.all(clients.map((c) => once(c, 'data')));
      for (const c of clients) c.destroy();
      assert.equal(proxy.logs.filter((l) => l.event === 'cluster_down').length, 1);
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});
