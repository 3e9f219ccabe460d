/**
 * A Redis that hangs (SIGSTOP: its TCP connection stays up, nothing answers): admission
 * waits no longer than `cluster.timeout`, then on_error decides; the link is down (logged
 * once) until Redis answers again, and the answers that arrive late do not leave the
 * shared counts wrong.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { attempt, clusterFixture, sharedCounts, type Attempt } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

describe('limits_scope: cluster with a hung Redis', { timeout: 60_000 }, () => {
  const fixture = clusterFixture();

  async function proxyWith(onError: 'allow' | 'deny'): Promise<TestProxy> {
    const proxy = await startProxy({
      cluster: { redis: fixture.redis.url, on_error: onError, timeout: '150ms' },
      listeners: [{ name: `hung-${onError}`, listen: '127.0.0.1:0', upstreams: [fixture.upstream.address], limits_scope: 'cluster', max_connections: 100 }],
    });
    await proxy.waitForLog((l) => l.event === 'cluster_up');
    return proxy;
  }

  it('on_error: allow admits after the timeout; late answers are reconciled once Redis is back', async () => {
    const proxy = await proxyWith('allow');
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) sockets.push((await attempt(proxy.port)).socket);
      fixture.redis.pause();
      try {
        // Sent to a Redis that does not answer: each decided by on_error (allow).
        const during = await Promise.all(Array.from({ length: 3 }, () => attempt(proxy.port)));
        assert.ok(during.every((d) => d.admitted));
        sockets.push(...during.map((d) => d.socket));
        const down = await proxy.waitForLog((l) => l.event === 'cluster_down');
        assert.match(String(down.reason), /no answer within 150 ms/);
        // While down, admission does not ask Redis at all.
        const more = await attempt(proxy.port);
        assert.ok(more.admitted);
        sockets.push(more.socket);
        // One closes before Redis is back.
        const gone = sockets.shift()!;
        gone.destroy();
        await proxy.waitForLog((l) => l.event === 'close');
      } finally {
        fixture.redis.resume();
      }
      await proxy.waitForLog((l) => l.event === 'cluster_up' && l.reason === 'answering again');
      // 2 + 3 + 1 - 1 connections open: what Redis must count, whatever the late answers said.
      await eventually(async () => ((await sharedCounts(fixture.client, 'hung-allow')).active === 5 ? true : undefined), 'the shared count to settle at 5');
      assert.equal(proxy.logs.filter((l) => l.event === 'cluster_down').length, 1);
      for (const socket of sockets) socket.destroy();
      await eventually(async () => ((await sharedCounts(fixture.client, 'hung-allow')).active === 0 ? true : undefined), 'every release to reach Redis');
    } finally {
      for (const socket of sockets) socket.destroy();
      await proxy.stop();
    }
  });

  it('on_error: deny refuses after the timeout, and a refused connection is not left counted', async () => {
    const proxy = await proxyWith('deny');
    try {
      fixture.redis.pause();
      let refused: Attempt;
      try {
        refused = await attempt(proxy.port);
      } finally {
        fixture.redis.resume();
      }
      assert.equal(refused.admitted, false);
      const reject = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(reject.reason, 'cluster_unavailable');
      await proxy.waitForLog((l) => l.event === 'cluster_up' && l.reason === 'answering again');
      // Redis did run the acquire (late): the proxy takes it back.
      await eventually(async () => ((await sharedCounts(fixture.client, 'hung-deny')).active === 0 ? true : undefined), 'the late acquire to be taken back');
      const ok = await attempt(proxy.port);
      assert.ok(ok.admitted);
      ok.socket.destroy();
      await once(ok.socket, 'close');
    } finally {
      await proxy.stop();
    }
  });
});
