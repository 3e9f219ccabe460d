/**
 * A Redis that hangs (SIGSTOP: its TCP connection stays up, nothing answers): admission
 * waits no longer than `cluster.timeout`, then on_error decides; the link is down (logged
 * once) until Redis answers again, and the answers that arrive late do not leave the
 * shared counts wrong.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { connectClient, startWhoami } from '../helpers/integration.js';
import { eventually } from '../helpers/ops.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { sharedCounts, TestRedis } from '../helpers/redis.js';
import type { TestServer } from '../helpers/servers.js';

async function admitted(port: number): Promise<{ ok: boolean; socket: Socket }> {
  const socket = await connectClient(port);
  const ok = await new Promise<boolean>((resolve) => {
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
    socket.once('end', () => resolve(false));
  });
  return { ok, socket };
}

describe('limits_scope: cluster with a hung Redis', { timeout: 60_000 }, () => {
  let redis: TestRedis;
  let client: Redis;
  let upstream: TestServer;

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

  async function proxyWith(onError: 'allow' | 'deny'): Promise<TestProxy> {
    const proxy = await startProxy({
      cluster: { redis: redis.url, on_error: onError, timeout: '150ms' },
      listeners: [{ name: `hung-${onError}`, listen: '127.0.0.1:0', upstreams: [upstream.address], limits_scope: 'cluster', max_connections: 100 }],
    });
    await proxy.waitForLog((l) => l.event === 'cluster_up');
    return proxy;
  }

  it('on_error: allow admits after the timeout; late answers are reconciled once Redis is back', async () => {
    const proxy = await proxyWith('allow');
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) sockets.push((await admitted(proxy.port)).socket);
      redis.pause();
      try {
        // Sent to a Redis that does not answer: each decided by on_error (allow).
        const during = await Promise.all(Array.from({ length: 3 }, () => admitted(proxy.port)));
        assert.ok(during.every((d) => d.ok));
        sockets.push(...during.map((d) => d.socket));
        const down = await proxy.waitForLog((l) => l.event === 'cluster_down');
        assert.match(String(down.reason), /no answer within 150 ms/);
        // While down, admission does not ask Redis at all.
        const more = await admitted(proxy.port);
        assert.ok(more.ok);
        sockets.push(more.socket);
        // One closes before Redis is back.
        const gone = sockets.shift()!;
        gone.destroy();
        await proxy.waitForLog((l) => l.event === 'close');
      } finally {
        redis.resume();
      }
      await proxy.waitForLog((l) => l.event === 'cluster_up' && l.reason === 'answering again');
      // 2 + 3 + 1 - 1 connections open: what Redis must count, whatever the late answers said.
      await eventually(async () => ((await sharedCounts(client, 'hung-allow')).active === 5 ? true : undefined), 'the shared count to settle at 5');
      assert.equal(proxy.logs.filter((l) => l.event === 'cluster_down').length, 1);
      for (const socket of sockets) socket.destroy();
      await eventually(async () => ((await sharedCounts(client, 'hung-allow')).active === 0 ? true : undefined), 'every release to reach Redis');
    } finally {
      for (const socket of sockets) socket.destroy();
      await proxy.stop();
    }
  });

  it('on_error: deny refuses after the timeout, and a refused connection is not left counted', async () => {
    const proxy = await proxyWith('deny');
    try {
      redis.pause();
      let refused: { ok: boolean; socket: Socket };
      try {
        refused = await admitted(proxy.port);
      } finally {
        redis.resume();
      }
      assert.equal(refused.ok, false);
      const reject = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(reject.reason, 'cluster_unavailable');
      await proxy.waitForLog((l) => l.event === 'cluster_up' && l.reason === 'answering again');
      // Redis did run the acquire (late): the proxy takes it back.
      await eventually(async () => ((await sharedCounts(client, 'hung-deny')).active === 0 ? true : undefined), 'the late acquire to be taken back');
      const ok = await admitted(proxy.port);
      assert.ok(ok.ok);
      ok.socket.destroy();
      await once(ok.socket, 'close');
    } finally {
      await proxy.stop();
    }
  });
});
