/**
 * An in-memory AdminRuntime for the admin tests: real ProxyMetrics fed by the test, upstream
 * states and open connections kept in plain collections, and every call recorded.
 */
import type {
  AdminRuntime,
  ConnectionInfo,
  StatsSnapshot,
  UpstreamAction,
  UpstreamChange,
  UpstreamChangeResult,
  UpstreamView,
} from '../../src/admin/admin-runtime.js';
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
      liveBytes: () => this.open.map((c) => ({ listener: c.listener, fromClient: c.bytes_from_client, toClient: c.bytes_to_client })),
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

  /** Configured weight and max_connections per "listener address" (default: weight 1, no limit). */
  readonly settings = new Map<string, { weight: number; max_connections: number | null }>();

  /** How often listUpstreams was asked (the dashboard asks once per refresh). */
  listCalls = 0;

  listUpstreams(listener: string): UpstreamView[] | undefined {
    this.listCalls++;
    if (!this.listenerNames.includes(listener)) return undefined;
    return this.upstreams.filter((u) => u.listener === listener).map((u) => this.view(u.listener, u.upstream));
  }

  changeUpstream(listener: string, change: UpstreamChange): UpstreamChangeResult {
    this.calls.push(`${change.op} ${listener} ${change.address}${'weight' in change && change.weight !== undefined ? ` weight ${change.weight}` : ''}`);
    if (!this.listenerNames.includes(listener)) return { ok: false, code: 'unknown_listener', error: `unknown listener "${listener}"` };
    const index = this.upstreams.findIndex((u) => u.listener === listener && u.upstream === change.address);
    const key = `${listener} ${change.address}`;
    if (change.op === 'add') {
      if (index >= 0) return { ok: false, code: 'upstream_exists', error: `${change.address} is already an upstream` };
      this.upstreams.push({ listener, upstream: change.address, state: 'healthy', active: 0 });
      this.settings.set(key, { weight: change.weight, max_connections: change.max_connections ?? null });
      return { ok: true, upstream: this.view(listener, change.address) };
    }
    if (index < 0) return { ok: false, code: 'unknown_upstream', error: `unknown upstream "${change.address}"` };
    const shown = this.view(listener, change.address);
    if (change.op === 'remove') {
      this.upstreams.splice(index, 1);
      this.settings.delete(key);
      return { ok: true, upstream: shown };
    }
    const next = {
      weight: change.weight ?? shown.weight,
      max_connections: change.max_connections === undefined ? shown.max_connections : change.max_connections,
    };
    this.settings.set(key, next);
    return { ok: true, upstream: this.view(listener, change.address) };
  }

  private view(listener: string, address: string): UpstreamView {
    const { weight, max_connections } = this.settings.get(`${listener} ${address}`) ?? { weight: 1, max_connections: null };
    const sample = this.upstreams.find((u) => u.listener === listener && u.upstream === address);
    const active = this.open.filter((c) => c.listener === listener && c.upstream === address).length;
    return { address, weight, max_connections, endpoints: [{ address, state: sample?.state ?? 'removed', active }] };
  }

  ready(): boolean {
    return this.isReady;
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.proxyMetrics.contentType, body: await this.proxyMetrics.text() };
  }
}
