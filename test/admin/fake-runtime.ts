/**
 * An in-memory AdminRuntime for the admin tests: real ProxyMetrics fed by the test, upstream
 * states and open connections kept in plain collections, and every call recorded.
 */
import type { AdminRuntime, ConnectionInfo, StatsSnapshot, UpstreamAction } from '../../src/admin/admin-runtime.js';
import { ProxyMetrics, type UpstreamSample } from '../../src/observability/metrics.js';

export class FakeRuntime implements AdminRuntime {
  readonly proxyMetrics = new ProxyMetrics();
  readonly listenerNames: string[];
  readonly upstreams: UpstreamSample[] = [];
  open: ConnectionInfo[] = [];
  queued = new Map<string, number>();
  isReady = true;
  reloadResult: { ok: true } | { ok: false; error: string } = { ok: true };
  /** When set, stats() throws it (to exercise the 500 path). */
  statsFailure: Error | null = null;
  readonly calls: string[] = [];

  constructor(listeners: Record<string, string[]> = { main: ['127.0.0.1:9000', '[::1]:9000'] }) {
    this.listenerNames = Object.keys(listeners);
    for (const [listener, addresses] of Object.entries(listeners)) {
      for (const upstream of addresses) this.upstreams.push({ listener, upstream, state: 'healthy', active: 0 });
    }
    this.proxyMetrics.setSources({
      // Active counts follow the open connections, as the real runtime's would.
      upstreams: () =>
        this.upstreams.map((u) => ({
          ...u,
          active: this.open.filter((c) => c.listener === u.listener && c.upstream === u.upstream).length,
        })),
      queueLength: (listener) => this.queued.get(listener) ?? 0,
      listeners: () => this.listenerNames,
      liveBytes: () =>
        this.open.map((c) => ({ listener: c.listener, fromClient: c.bytes_from_client, toClient: c.bytes_to_client })),
    });
  }

  stats(): StatsSnapshot {
    if (this.statsFailure !== null) throw this.statsFailure;
    return { ...this.proxyMetrics.snapshot(), uptime_s: 1 };
  }

  connections(): ConnectionInfo[] {
    return this.open;
  }

  closeConnection(id: string): boolean {
    this.calls.push(`close ${id}`);
    const connection = this.open.find((c) => c.id === id);
    if (connection === undefined) return false;
    this.open = this.open.filter((c) => c !== connection);
    this.proxyMetrics
      .listenerMetrics(connection.listener)
      .closed('admin', connection.upstream, connection.bytes_from_client, connection.bytes_to_client, connection.age_ms / 1000);
    return true;
  }

  async reload(): Promise<{ ok: true } | { ok: false; error: string }> {
    this.calls.push('reload');
    return this.reloadResult;
  }

  upstreamAction(listener: string, address: string, action: UpstreamAction): 'ok' | 'unknown_listener' | 'unknown_upstream' {
    this.calls.push(`${action} ${listener} ${address}`);
    if (!this.listenerNames.includes(listener)) return 'unknown_listener';
    const upstream = this.upstreams.find((u) => u.listener === listener && u.upstream === address);
    if (upstream === undefined) return 'unknown_upstream';
    upstream.state = action === 'drain' ? 'draining' : 'healthy';
    return 'ok';
  }

  ready(): boolean {
    return this.isReady;
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.proxyMetrics.contentType, body: await this.proxyMetrics.text() };
  }
}
