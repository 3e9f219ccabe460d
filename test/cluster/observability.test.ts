/**
 * What an operator sees of the cluster: the tcpproxy_cluster_* metrics (only in processes that
 * use it), the cluster state in /api/stats merged across workers, and ioredis not even loaded
 * by a proxy without `limits_scope: cluster`.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { mergeStats } from '../../src/admin/stats.js';
import type { StatsSnapshot } from '../../src/admin/admin-runtime.js';
import { redactRedisUrl, type ClusterStatus } from '../../src/cluster/redis-link.js';
import { ProxyMetrics } from '../../src/observability/metrics.js';
import { metricNames, sampleValue } from '../admin/prometheus-text.js';
import { startProxy } from '../helpers/proxy.js';
import { startEchoServer } from '../helpers/servers.js';

function workerStats(cluster: ClusterStatus): StatsSnapshot {
  return { time: 1, listeners: [], upstreams: [], cluster };
}

describe('cluster observability', () => {
  it('the cluster metrics exist only once the cluster is used, and show what was recorded', async () => {
    const metrics = new ProxyMetrics();
    assert.ok(!metricNames(await metrics.text()).some((name) => name.startsWith('tcpproxy_cluster_')));
    const cluster = metrics.clusterMetrics();
    assert.equal(metrics.clusterMetrics(), cluster, 'one recorder per process');
    cluster.redisUp(true);
    cluster.roundTrip(0.0003);
    cluster.onErrorDecision('db', 'allow');
    cluster.onErrorDecision('db', 'allow');
    cluster.onErrorDecision('db', 'deny');
    cluster.clusterActive('db', 42);
    const text = await metrics.text();
    assert.equal(sampleValue(text, 'tcpproxy_cluster_redis_up'), 1);
    assert.equal(sampleValue(text, 'tcpproxy_cluster_redis_seconds_count'), 1);
    assert.equal(sampleValue(text, 'tcpproxy_cluster_on_error_total', { listener: 'db', decision: 'allow' }), 2);
    assert.equal(sampleValue(text, 'tcpproxy_cluster_on_error_total', { listener: 'db', decision: 'deny' }), 1);
    assert.equal(sampleValue(text, 'tcpproxy_cluster_connections_active', { listener: 'db' }), 42);
    cluster.redisUp(false);
    assert.equal(sampleValue(await metrics.text(), 'tcpproxy_cluster_redis_up'), 0);
    assert.equal(sampleValue(await metrics.text(), 'tcpproxy_rejections_total', { listener: 'db', reason: 'cluster_unavailable' }), undefined);
  });

  it('workers merge: down when any worker is down, held connections add up, the cluster-wide count is the largest seen', () => {
    const base = { redis: 'redis://127.0.0.1:6379/0', on_error: 'allow' as const, lease_ms: 10_000 };
    const merged = mergeStats([
      workerStats({ ...base, state: 'up', listeners: [{ name: 'db', local: 3, cluster: 10 }] }),
      workerStats({ ...base, state: 'down', listeners: [{ name: 'db', local: 2, cluster: 12 }] }),
    ]);
    assert.deepEqual(merged.cluster, { ...base, state: 'down', listeners: [{ name: 'db', local: 5, cluster: 12 }] });
    assert.equal(mergeStats([{ time: 1, listeners: [], upstreams: [] }]).cluster, undefined);
  });

  it('the Redis password never shows', () => {
    assert.equal(redactRedisUrl('redis://:s3cret@10.0.0.5:6379/0'), 'redis://:***@10.0.0.5:6379/0');
    assert.equal(redactRedisUrl('rediss://app:s3cret@redis.example/1'), 'rediss://app:***@redis.example/1');
    assert.equal(redactRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
  });

  it('a proxy without limits_scope: cluster does not load the Redis client', async () => {
    // ioredis is CommonJS: once imported, it is in the CommonJS module cache.
    const cache = createRequire(import.meta.url).cache;
    const loaded = (): boolean => Object.keys(cache).some((path) => path.includes('/node_modules/ioredis/'));
    // Each test file runs in a process of its own, and nothing in this one imports ioredis.
    assert.equal(loaded(), false);
    const echo = await startEchoServer();
    const proxy = await startProxy({
      cluster: { redis: 'redis://127.0.0.1:1' }, // configured, but no listener uses it
      listeners: [{ name: 'plain', listen: '127.0.0.1:0', upstreams: [echo.address], max_connections: 5 }],
    });
    try {
      assert.equal(loaded(), false);
      assert.equal(proxy.runtime.stats().cluster, undefined);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
});
