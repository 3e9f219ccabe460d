import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, register as globalRegister } from 'prom-client';
import { ProxyMetrics, type UpstreamSample, type LiveBytes } from '../../src/observability/metrics.js';
import { REJECT_REASONS, CLOSE_REASONS } from '../../src/observability/reasons.js';
import { mergeStats } from '../../src/admin/stats.js';
import { metricNames, sampleValue } from './prometheus-text.js';

const T = { timeout: 10_000 };

test('connection counters, bytes and the duration histogram follow the recorder calls', T, async () => {
  const metrics = new ProxyMetrics();
  const main = metrics.listenerMetrics('main');
  main.bridged();
  main.bridged();
  main.bridged();
  main.closed('client_closed', '127.0.0.1:9000', 100, 2000, 1.5);
  main.closed('idle_timeout', null, 7, 0, 0.02);
  main.rejected('acl');
  main.rejected('acl');
  main.rejected('rate_limit');

  const text = await metrics.text();
  assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'main' }), 3);
  assert.equal(sampleValue(text, 'tcpproxy_connections_active', { listener: 'main' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_closes_total', { listener: 'main', reason: 'client_closed' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_closes_total', { listener: 'main', reason: 'idle_timeout' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_closes_total', { listener: 'main', reason: 'admin' }), 0);
  assert.equal(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'main', reason: 'acl' }), 2);
  assert.equal(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'main', reason: 'rate_limit' }), 1);
  // Every reason is exported, so rate() works from the first refusal on.
  for (const reason of REJECT_REASONS) {
    assert.notEqual(sampleValue(text, 'tcpproxy_rejections_total', { listener: 'main', reason }), undefined, reason);
  }
  for (const reason of CLOSE_REASONS) {
    assert.notEqual(sampleValue(text, 'tcpproxy_closes_total', { listener: 'main', reason }), undefined, reason);
  }
  assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'from_client' }), 107);
  assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'to_client' }), 2000);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_bytes_total', { listener: 'main', upstream: '127.0.0.1:9000', direction: 'to_client' }), 2000);
  assert.equal(sampleValue(text, 'tcpproxy_connection_duration_seconds_count', { listener: 'main' }), 2);
  assert.equal(sampleValue(text, 'tcpproxy_connection_duration_seconds_sum', { listener: 'main' }), 1.52);
  assert.equal(sampleValue(text, 'tcpproxy_connection_duration_seconds_bucket', { listener: 'main', le: '0.05' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_connection_duration_seconds_bucket', { listener: 'main', le: '5' }), 2);
});

test('upstream connects, failures and the connect-latency histogram are labelled by listener and upstream', T, async () => {
  const metrics = new ProxyMetrics();
  const edge = metrics.listenerMetrics('edge');
  edge.connected('10.0.0.1:80', 0.003);
  edge.connected('10.0.0.1:80', 0.2);
  edge.connectFailed('10.0.0.2:80');
  metrics.listenerMetrics('other').connected('10.0.0.1:80', 0.001);

  const text = await metrics.text();
  const up1 = { listener: 'edge', upstream: '10.0.0.1:80' };
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_total', up1), 2);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_total', { listener: 'other', upstream: '10.0.0.1:80' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connect_failures_total', { listener: 'edge', upstream: '10.0.0.2:80' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connect_seconds_count', up1), 2);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connect_seconds_bucket', { ...up1, le: '0.005' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connect_seconds_bucket', { ...up1, le: '0.25' }), 2);
});

test('runtime state is pulled from the sources at each scrape', T, async () => {
  const metrics = new ProxyMetrics();
  const upstreams: UpstreamSample[] = [
    { listener: 'main', upstream: 'a:1', state: 'healthy', active: 4 },
    { listener: 'main', upstream: 'b:1', state: 'draining', active: 1 },
    { listener: 'main', upstream: 'c:1', state: 'down', active: 0 },
  ];
  let live: LiveBytes[] = [{ listener: 'main', fromClient: 50, toClient: 5000 }];
  let queue = 3;
  metrics.setSources({ upstreams: () => upstreams, queueLength: () => queue, listeners: () => ['main', 'idle'], liveBytes: () => live });
  const main = metrics.listenerMetrics('main');
  main.bridged();
  main.closed('upstream_closed', 'a:1', 10, 10, 1);

  let text = await metrics.text();
  assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { upstream: 'a:1' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { upstream: 'b:1' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { upstream: 'c:1' }), 0);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_state', { upstream: 'b:1', state: 'draining' }), 1);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_state', { upstream: 'b:1', state: 'healthy' }), 0);
  assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_active', { listener: 'main', upstream: 'a:1' }), 4);
  assert.equal(sampleValue(text, 'tcpproxy_queue_length', { listener: 'main' }), 3);
  // Open connections count towards the byte totals while they transfer.
  assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'to_client' }), 5010);
  // A configured listener without traffic is exported as zeros.
  assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'idle' }), 0);

  // A reload removes an upstream; the connection ends and its bytes move from live to finished.
  upstreams.splice(2, 1);
  live = [];
  queue = 0;
  main.closed('client_closed', 'a:1', 50, 5000, 2);
  text = await metrics.text();
  assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { upstream: 'c:1' }), undefined);
  assert.equal(sampleValue(text, 'tcpproxy_queue_length', { listener: 'main' }), 0);
  assert.equal(sampleValue(text, 'tcpproxy_bytes_total', { listener: 'main', direction: 'to_client' }), 5010);
});

test('snapshot() gives the /api/stats figures, open connections included', T, () => {
  const metrics = new ProxyMetrics();
  metrics.setSources({
    upstreams: () => [{ listener: 'main', upstream: 'a:1', state: 'healthy', active: 2 }],
    queueLength: () => 1,
    listeners: () => ['main'],
    liveBytes: () => [
      { listener: 'main', fromClient: 1, toClient: 2 },
      { listener: 'main', fromClient: 10, toClient: 20 },
    ],
  });
  const main = metrics.listenerMetrics('main');
  main.bridged();
  main.bridged();
  main.rejected('no_upstream');
  main.connected('a:1', 0.001);
  main.connectFailed('a:1');
  const snapshot = metrics.snapshot();
  assert.ok(Math.abs(snapshot.time - Date.now()) < 1000);
  assert.deepEqual(snapshot.upstreams, [{ listener: 'main', address: 'a:1', state: 'healthy', active: 2, connections_total: 1, connect_failures: 1 }]);
  const [listener] = snapshot.listeners;
  assert.equal(listener?.name, 'main');
  assert.equal(listener?.active, 2);
  assert.equal(listener?.connections_total, 2);
  assert.equal(listener?.queue_length, 1);
  assert.equal(listener?.bytes_from_client, 11);
  assert.equal(listener?.bytes_to_client, 22);
  assert.equal(listener?.rejections.no_upstream, 1);
  assert.equal(listener?.closes.client_closed, 0);
});

test('each instance has its own registry, every name starts with tcpproxy_, process metrics are optional', T, async () => {
  const plain = new ProxyMetrics();
  const withProcess = new ProxyMetrics({ collectDefault: true });
  plain.listenerMetrics('x').bridged();
  assert.equal(plain.listenerMetrics('x'), plain.listenerMetrics('x'));
  assert.equal(sampleValue(await withProcess.text(), 'tcpproxy_connections_total', { listener: 'x' }), undefined);
  assert.deepEqual(await globalRegister.getMetricsAsJSON(), []);

  const names = metricNames(await withProcess.text());
  assert.ok(names.includes('tcpproxy_process_cpu_seconds_total'), names.join(' '));
  for (const name of names) assert.match(name, /^tcpproxy_/);
  assert.ok(!metricNames(await plain.text()).includes('tcpproxy_process_cpu_seconds_total'));
  assert.match(plain.contentType, /^text\/plain/);
});

test('mergeStats adds up workers and combines upstream states', T, () => {
  const worker = (active: number, state: 'healthy' | 'down' | 'draining', time: number) => {
    const metrics = new ProxyMetrics();
    metrics.setSources({
      upstreams: () => [{ listener: 'main', upstream: 'a:1', state, active }],
      queueLength: () => 1,
      listeners: () => ['main'],
      liveBytes: () => [{ listener: 'main', fromClient: 5, toClient: 7 }],
    });
    const main = metrics.listenerMetrics('main');
    for (let i = 0; i < active; i++) main.bridged();
    main.rejected('limit');
    return { ...metrics.snapshot(), time };
  };
  const merged = mergeStats([worker(2, 'down', 10), worker(3, 'healthy', 20)]);
  assert.equal(merged.time, 20);
  assert.equal(merged.listeners.length, 1);
  assert.equal(merged.listeners[0]?.active, 5);
  assert.equal(merged.listeners[0]?.queue_length, 2);
  assert.equal(merged.listeners[0]?.bytes_to_client, 14);
  assert.equal(merged.listeners[0]?.rejections.limit, 2);
  assert.equal(merged.upstreams[0]?.active, 5);
  assert.equal(merged.upstreams[0]?.state, 'healthy');
  assert.equal(mergeStats([worker(1, 'healthy', 1), worker(1, 'draining', 1)]).upstreams[0]?.state, 'draining');
  assert.equal(mergeStats([worker(1, 'down', 1), worker(1, 'down', 1)]).upstreams[0]?.state, 'down');
});

test('worker registries aggregate: counts add up, upstream_up stays 0/1', T, async () => {
  const worker = (state: 'healthy' | 'down') => {
    const metrics = new ProxyMetrics();
    metrics.setSources({
      upstreams: () => [{ listener: 'main', upstream: 'a:1', state, active: 2 }],
      queueLength: () => 0,
      listeners: () => ['main'],
      liveBytes: () => [],
    });
    metrics.listenerMetrics('main').bridged();
    return metrics.json();
  };
  const parts = [await worker('healthy'), await worker('healthy'), await worker('down')];
  const merged = await AggregatorRegistry.aggregate(parts).metrics();
  assert.equal(sampleValue(merged, 'tcpproxy_connections_active', { listener: 'main' }), 3);
  assert.equal(sampleValue(merged, 'tcpproxy_upstream_connections_active', { upstream: 'a:1' }), 6);
  assert.equal(sampleValue(merged, 'tcpproxy_upstream_up', { upstream: 'a:1' }), 1);
  assert.equal(sampleValue(merged, 'tcpproxy_upstream_state', { upstream: 'a:1', state: 'healthy' }), 1);
  assert.equal(sampleValue(merged, 'tcpproxy_upstream_state', { upstream: 'a:1', state: 'down' }), 1);
});
