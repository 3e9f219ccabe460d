/**
 * Reloads and `limits_scope: cluster`: a reload may switch a listener to cluster scope (the
 * Redis link opens then), new limits apply at once, and a changed `cluster` block is kept
 * as it was (with a warning) until a restart.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { buildSnapshot } from '../../src/config/load.js';
import { startProxy } from '../helpers/proxy.js';
import { attempt, clusterFixture, sharedCounts } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

describe('limits_scope: cluster and reloads', { timeout: 60_000 }, () => {
  const fixture = clusterFixture();

  it('switching to cluster scope by reload; new limits at once; the cluster block stays until a restart', async () => {
    const config = (keys: Record<string, unknown>, cluster: Record<string, unknown> = {}) => ({
      log: { level: 'info' },
      cluster: { redis: fixture.redis.url, ...cluster },
      listeners: [{ name: 'db', listen: '127.0.0.1:0', upstreams: [fixture.upstream.address], max_connections: 2, ...keys }],
    });
    const proxy = await startProxy(config({}));
    const open: Socket[] = [];
    const hold = async (localAddress: string): Promise<boolean> => {
      const result = await attempt(proxy.port, localAddress);
      if (result.admitted) open.push(result.socket);
      return result.admitted;
    };
    try {
      assert.equal(await hold('127.0.6.1'), true);
      assert.equal(
        proxy.logs.some((l) => l.event === 'cluster_up'),
        false,
        'no listener uses the cluster yet: no link',
      );
      assert.deepEqual(await proxy.runtime.reload(buildSnapshot(config({ limits_scope: 'cluster' }))), { ok: true });
      await proxy.waitForLog((l) => l.event === 'cluster_up');
      // The connection admitted locally stays counted locally; Redis counts from now on.
      assert.equal(await hold('127.0.6.2'), true);
      assert.equal(await hold('127.0.6.3'), true);
      assert.equal(await hold('127.0.6.4'), false);
      assert.equal((await sharedCounts(fixture.client, 'db')).active, 2);
      assert.deepEqual(await proxy.runtime.reload(buildSnapshot(config({ limits_scope: 'cluster', max_connections: 3 }))), { ok: true });
      assert.equal(await hold('127.0.6.5'), true);
      assert.equal(await hold('127.0.6.6'), false);
      // A different cluster block: kept as running, with a warning.
      assert.deepEqual(await proxy.runtime.reload(buildSnapshot(config({ limits_scope: 'cluster', max_connections: 3 }, { prefix: 'other' }))), { ok: true });
      await proxy.waitForLog((l) => l.event === 'reload' && String(l.msg).includes('cluster settings changed'));
      assert.equal(await hold('127.0.6.7'), false);
      assert.equal((await sharedCounts(fixture.client, 'db')).active, 3);
      for (const socket of open.splice(0)) socket.destroy();
      await eventually(async () => ((await sharedCounts(fixture.client, 'db')).active === 0 ? true : undefined), 'the releases to reach Redis');
    } finally {
      for (const socket of open) socket.destroy();
      await proxy.stop();
    }
  });
});
