/**
 * Prometheus metrics for the proxy, on a registry of their own (never prom-client's global one,
 * so that tests and embedders can run several proxies in one process).
 *
 * Why counters are plain numbers: prom-client hashes and validates the label set on every
 * `inc()`, even on a "child" from `labels()`. The listener and bridge call these recorders once
 * or twice per connection, so the recorders only bump numbers in an object resolved once per
 * listener (and once per upstream); the prom-client counters are filled from those numbers at
 * scrape time by `collect` callbacks. Histograms must bucket each observation, so they use
 * prom-client's `observe()` with a label object built once (no allocation per call).
 *
 * State that belongs to the runtime (upstream health, active connections per upstream, queue
 * lengths, bytes of connections still open) is pulled from `MetricSources` at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const CLOSE_REASONS = [
  'client_closed',
  'upstream_closed',
  'idle_timeout',
  'max_lifetime',
  'error',
  'shutdown',
  'filter',
  'admin',
  /** `schedule.enforce: close`: the access window ended. */
  'schedule',
  /** `client_timeout` / `server_timeout`: that side stayed silent while it owed data or an acknowledgement. */
  'client_timeout',
  'server_timeout',
] as const;
export type CloseReason = (typeof CLOSE_REASONS)[number];

export const REJECT_REASONS = [
  'acl',
  'schedule',
  'limit',
  'rate_limit',
  'queue_timeout',
  'no_upstream',
  'proxy_protocol',
  /** The TLS handshake with the client failed (termination). */
  'tls',
  /** Still queued when the proxy shut down. */
  'shutdown',
  /** `limits_scope: cluster` with `cluster.on_error: deny` while Redis cannot be reached. */
  'cluster_unavailable',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export type UpstreamState = 'healthy' | 'down' | 'draining';
export const UPSTREAM_STATES: readonly UpstreamState[] = ['healthy', 'down', 'draining'];

/**
 * What the listener and bridge report. Pairing rule: every `accepted()` is followed by exactly
 * one `closed()` (that is what keeps the active gauge right); a refused connection gets
 * `rejected()` only.
 */
export interface ListenerMetrics {
  /** A connection that is being proxied: tcpproxy_connections_total, tcpproxy_connections_active + 1. */
  accepted(): void;
  /** A connection refused (never `accepted()`): tcpproxy_rejections_total{reason}. */
  rejected(reason: RejectReason): void;
  /** An upstream connection established after `seconds`: connect histogram, per-upstream total. */
  connected(upstream: string, seconds: number): void;
  /** An upstream connect attempt that failed or timed out. */
  connectFailed(upstream: string): void;
  /** The end of an accepted connection: closes by reason, bytes, duration, active - 1. */
  closed(
    reason: CloseReason,
    upstream: string | null,
    bytesFromClient: number,
    bytesToClient: number,
    seconds: number,
  ): void;
}

/** What the Redis link of `limits_scope: cluster` reports (src/cluster). */
export interface ClusterMetrics {
  /** The link went up or down: tcpproxy_cluster_redis_up. */
  redisUp(up: boolean): void;
  /** One script's round trip: tcpproxy_cluster_redis_seconds. */
  roundTrip(seconds: number): void;
  /** An admission decided by `cluster.on_error` (Redis down or slow): tcpproxy_cluster_on_error_total. */
  onErrorDecision(listener: string, decision: 'allow' | 'deny'): void;
  /** The listener's connections across the cluster, as Redis last answered: tcpproxy_cluster_connections_active. */
  clusterActive(listener: string, active: number): void;
}

/** Redis round trips: loopback is ~0.1 ms, a neighbouring host ~0.5 ms; above `cluster.timeout` is on_error's. */
const REDIS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The cluster metrics, registered on first use: processes without `cluster` export none of them. */
class ClusterRecorder implements ClusterMetrics {
  up = 0;
  readonly decisions = new Map<string, { allow: number; deny: number }>();
  readonly active = new Map<string, number>();
  private readonly seconds: Histogram;

  constructor(registers: Registry[]) {
    this.seconds = new Histogram({ name: 'tcpproxy_cluster_redis_seconds', help: 'Round-trip time of the cluster-limit scripts sent to Redis.', buckets: REDIS_BUCKETS, registers });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- collect() below runs with the gauge as `this`
    const recorder = this;
    new Gauge({
      name: 'tcpproxy_cluster_redis_up',
      help: '1 while the Redis of limits_scope: cluster answers, 0 while on_error decides.',
      registers,
      // Merged across workers: up only when every worker reaches Redis.
      aggregator: 'min',
      collect() {
        this.set(recorder.up);
      },
    });
    scrapedCounter(registers, 'tcpproxy_cluster_on_error_total', 'Admissions decided by cluster.on_error because Redis was down or slow, by decision.', ['listener', 'decision'], function* () {
      for (const [listener, counts] of recorder.decisions) {
        yield [{ listener, decision: 'allow' }, counts.allow];
        yield [{ listener, decision: 'deny' }, counts.deny];
      }
    });
    new Gauge({
      name: 'tcpproxy_cluster_connections_active',
      help: "The listener's open connections across all instances, as Redis last answered.",
      labelNames: ['listener'],
      registers,
      // Every worker sees the same cluster-wide figure (at slightly different moments).
      aggregator: 'max',
      collect() {
        this.reset();
        for (const [listener, value] of recorder.active) this.set({ listener }, value);
      },
    });
  }

  redisUp(up: boolean): void {
    this.up = up ? 1 : 0;
  }

  roundTrip(seconds: number): void {
    this.seconds.observe(seconds);
  }

  onErrorDecision(listener: string, decision: 'allow' | 'deny'): void {
    let counts = this.decisions.get(listener);
    if (counts === undefined) this.decisions.set(listener, (counts = { allow: 0, deny: 0 }));
    counts[decision]++;
  }

  clusterActive(listener: string, active: number): void {
    this.active.set(listener, active);
  }
}

export interface UpstreamSample {
  listener: string;
  upstream: string;
  state: UpstreamState;
  active: number;
}

export interface LiveBytes {
  listener: string;
  fromClient: number;
  toClient: number;
}

/** Runtime state read at scrape (and snapshot) time. */
export interface MetricSources {
  upstreams(): UpstreamSample[];
  queueLength(listener: string): number;
  /** The listeners currently configured, in configuration order. */
  listeners(): string[];
  /** Bytes of still-open connections, so byte totals move while a long transfer runs. */
  liveBytes(): LiveBytes[];
}

/** One listener's figures, as served in /api/stats (bytes include connections still open). */
export interface ListenerStats {
  name: string;
  active: number;
  connections_total: number;
  queue_length: number;
  bytes_from_client: number;
  bytes_to_client: number;
  rejections: Record<RejectReason, number>;
  closes: Record<CloseReason, number>;
}

export interface UpstreamStats {
  listener: string;
  address: string;
  state: UpstreamState;
  active: number;
  connections_total: number;
  connect_failures: number;
}

export interface MetricsSnapshot {
  /** Milliseconds since the epoch when the snapshot was taken. */
  time: number;
  listeners: ListenerStats[];
  upstreams: UpstreamStats[];
}

export interface ProxyMetricsOptions {
  /** Also export process metrics (CPU, memory, event loop lag, ...), prefixed tcpproxy_. */
  collectDefault?: boolean;
}

/** Connect latency: loopback is sub-millisecond, a remote data centre tens of ms, a timeout seconds. */
const CONNECT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Connection lifetimes span short requests to hour-long sessions. */
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400];

type Sample = [labels: Record<string, string>, value: number];

/** A counter whose samples are taken at each scrape: reset, then add each current total. */
function scrapedCounter(registers: Registry[], name: string, help: string, labelNames: string[], samples: () => Iterable<Sample>): void {
  new Counter({
    name,
    help,
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const [labels, value] of samples()) this.inc(labels, value);
    },
  });
}

function zeroCounts<K extends string>(keys: readonly K[]): Record<K, number> {
  const counts = {} as Record<K, number>;
  for (const key of keys) counts[key] = 0;
  return counts;
}

class UpstreamRecorder {
  readonly labels: { listener: string; upstream: string };
  connects = 0;
  failures = 0;
  bytesFromClient = 0;
  bytesToClient = 0;

  constructor(listener: string, upstream: string) {
    this.labels = { listener, upstream };
  }
}

class ListenerRecorder implements ListenerMetrics {
  readonly labels: { listener: string };
  readonly upstreams = new Map<string, UpstreamRecorder>();
  connectionsTotal = 0;
  active = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  readonly rejections = zeroCounts(REJECT_REASONS);
  readonly closes = zeroCounts(CLOSE_REASONS);

  constructor(
    readonly name: string,
    private readonly connectSeconds: Histogram<'listener' | 'upstream'>,
    private readonly durationSeconds: Histogram<'listener'>,
  ) {
    this.labels = { listener: name };
  }

  accepted(): void {
    this.connectionsTotal++;
    this.active++;
  }

  rejected(reason: RejectReason): void {
    this.rejections[reason]++;
  }

  connected(upstream: string, seconds: number): void {
    const recorder = this.upstream(upstream);
    recorder.connects++;
    this.connectSeconds.observe(recorder.labels, seconds);
  }

  connectFailed(upstream: string): void {
    this.upstream(upstream).failures++;
  }

  closed(
    reason: CloseReason,
    upstream: string | null,
    bytesFromClient: number,
    bytesToClient: number,
    seconds: number,
  ): void {
    this.closes[reason]++;
    this.active--;
    this.bytesFromClient += bytesFromClient;
    this.bytesToClient += bytesToClient;
    if (upstream !== null) {
      const recorder = this.upstream(upstream);
      recorder.bytesFromClient += bytesFromClient;
      recorder.bytesToClient += bytesToClient;
    }
    this.durationSeconds.observe(this.labels, seconds);
  }

  upstream(address: string): UpstreamRecorder {
    let recorder = this.upstreams.get(address);
    if (recorder === undefined) {
      recorder = new UpstreamRecorder(this.name, address);
      this.upstreams.set(address, recorder);
    }
    return recorder;
  }
}

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly contentType: string = this.registry.contentType;
  private readonly recorders = new Map<string, ListenerRecorder>();
  private sources: MetricSources | null = null;
  private cluster: ClusterRecorder | undefined;
  private readonly connectSeconds: Histogram<'listener' | 'upstream'>;
  private readonly durationSeconds: Histogram<'listener'>;

  constructor(options: ProxyMetricsOptions = {}) {
    const registers = [this.registry];
    this.connectSeconds = new Histogram({
      name: 'tcpproxy_upstream_connect_seconds',
      help: 'Time to establish the upstream TCP connection.',
      labelNames: ['listener', 'upstream'],
      buckets: CONNECT_BUCKETS,
      registers,
    });
    this.durationSeconds = new Histogram({
      name: 'tcpproxy_connection_duration_seconds',
      help: 'Lifetime of proxied connections, from accept to close.',
      labelNames: ['listener'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.registerListenerCounters(registers);
    this.registerUpstreamCounters(registers);
    this.registerRuntimeGauges(registers);
    if (options.collectDefault === true) collectDefaultMetrics({ register: this.registry, prefix: 'tcpproxy_' });
  }

  /** The recorder for one listener; cached, so callers may also keep the returned object. */
  listenerMetrics(listener: string): ListenerMetrics {
    return this.recorder(listener);
  }

  /** The cluster-limit metrics (registered on the first call). */
  clusterMetrics(): ClusterMetrics {
    this.cluster ??= new ClusterRecorder([this.registry]);
    return this.cluster;
  }

  setSources(sources: MetricSources): void {
    this.sources = sources;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The figures behind /api/stats and the dashboard. */
  snapshot(): MetricsSnapshot {
    const live = this.liveBytesByListener();
    const names = this.sources?.listeners() ?? [...this.recorders.keys()];
    const listeners = names.map((name): ListenerStats => {
      const recorder = this.recorder(name);
      const open = live.get(name);
      return {
        name,
        active: recorder.active,
        connections_total: recorder.connectionsTotal,
        queue_length: this.sources?.queueLength(name) ?? 0,
        bytes_from_client: recorder.bytesFromClient + (open?.fromClient ?? 0),
        bytes_to_client: recorder.bytesToClient + (open?.toClient ?? 0),
        rejections: { ...recorder.rejections },
        closes: { ...recorder.closes },
      };
    });
    const upstreams = (this.sources?.upstreams() ?? []).map((sample): UpstreamStats => {
      const recorder = this.recorders.get(sample.listener)?.upstreams.get(sample.upstream);
      return {
        listener: sample.listener,
        address: sample.upstream,
        state: sample.state,
        active: sample.active,
        connections_total: recorder?.connects ?? 0,
        connect_failures: recorder?.failures ?? 0,
      };
    });
    return { time: Date.now(), listeners, upstreams };
  }

  private recorder(listener: string): ListenerRecorder {
    let recorder = this.recorders.get(listener);
    if (recorder === undefined) {
      recorder = new ListenerRecorder(listener, this.connectSeconds, this.durationSeconds);
      this.recorders.set(listener, recorder);
    }
    return recorder;
  }

  /** Every recorder, including configured listeners that have seen no traffic yet (exported as zeros). */
  private listenerRecorders(): IterableIterator<ListenerRecorder> {
    for (const name of this.sources?.listeners() ?? []) this.recorder(name);
    return this.recorders.values();
  }

  private liveBytesByListener(): Map<string, { fromClient: number; toClient: number }> {
    const totals = new Map<string, { fromClient: number; toClient: number }>();
    for (const entry of this.sources?.liveBytes() ?? []) {
      const total = totals.get(entry.listener);
      if (total === undefined) totals.set(entry.listener, { fromClient: entry.fromClient, toClient: entry.toClient });
      else {
        total.fromClient += entry.fromClient;
        total.toClient += entry.toClient;
      }
    }
    return totals;
  }

  // Counters are rebuilt from the recorders at each scrape: reset, then add the current total.
  private registerListenerCounters(registers: Registry[]): void {
    const recorders = () => this.listenerRecorders();
    const liveBytes = () => this.liveBytesByListener();
    scrapedCounter(registers, 'tcpproxy_connections_total', 'Connections proxied by the listener (accepted and connected to an upstream).', ['listener'], function* () {
      for (const r of recorders()) yield [r.labels, r.connectionsTotal];
    });
    scrapedCounter(registers, 'tcpproxy_rejections_total', 'Connections refused before being proxied, by reason.', ['listener', 'reason'], function* () {
      for (const r of recorders()) for (const reason of REJECT_REASONS) yield [{ listener: r.name, reason }, r.rejections[reason]];
    });
    scrapedCounter(registers, 'tcpproxy_closes_total', 'Proxied connections closed, by reason.', ['listener', 'reason'], function* () {
      for (const r of recorders()) for (const reason of CLOSE_REASONS) yield [{ listener: r.name, reason }, r.closes[reason]];
    });
    scrapedCounter(
      registers,
      'tcpproxy_bytes_total',
      'Bytes received from clients (from_client) and sent to clients (to_client), open connections included.',
      ['listener', 'direction'],
      function* () {
        const live = liveBytes();
        for (const r of recorders()) {
          const open = live.get(r.name);
          yield [{ listener: r.name, direction: 'from_client' }, r.bytesFromClient + (open?.fromClient ?? 0)];
          yield [{ listener: r.name, direction: 'to_client' }, r.bytesToClient + (open?.toClient ?? 0)];
        }
      },
    );
    new Gauge({
      name: 'tcpproxy_connections_active',
      help: 'Connections currently open through the listener.',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const r of recorders()) this.set(r.labels, r.active);
      },
    });
  }

  private registerUpstreamCounters(registers: Registry[]): void {
    const recorders = this.recorders;
    function* upstreamRecorders(): Generator<UpstreamRecorder> {
      for (const listener of recorders.values()) yield* listener.upstreams.values();
    }
    scrapedCounter(registers, 'tcpproxy_upstream_connections_total', 'Upstream connections established.', ['listener', 'upstream'], function* () {
      for (const u of upstreamRecorders()) yield [u.labels, u.connects];
    });
    scrapedCounter(registers, 'tcpproxy_upstream_connect_failures_total', 'Upstream connect attempts that failed or timed out.', ['listener', 'upstream'], function* () {
      for (const u of upstreamRecorders()) yield [u.labels, u.failures];
    });
    scrapedCounter(
      registers,
      'tcpproxy_upstream_bytes_total',
      'Bytes of finished connections per upstream: from_client (received from clients), to_client.',
      ['listener', 'upstream', 'direction'],
      function* () {
        for (const u of upstreamRecorders()) {
          yield [{ ...u.labels, direction: 'from_client' }, u.bytesFromClient];
          yield [{ ...u.labels, direction: 'to_client' }, u.bytesToClient];
        }
      },
    );
  }

  // Gauges of runtime state; reset first so upstreams and listeners removed by a reload vanish.
  private registerRuntimeGauges(registers: Registry[]): void {
    const upstreams = () => this.sources?.upstreams() ?? [];
    const listeners = () => this.sources?.listeners() ?? [];
    const queueLength = (listener: string) => this.sources?.queueLength(listener) ?? 0;
    new Gauge({
      name: 'tcpproxy_upstream_up',
      help: '1 when the upstream is not marked down (healthy or draining), 0 when down.',
      labelNames: ['listener', 'upstream'],
      registers,
      // Merged across workers (prom-client's AggregatorRegistry): up when any worker reaches it, not a sum.
      aggregator: 'max',
      collect() {
        this.reset();
        for (const u of upstreams()) this.set({ listener: u.listener, upstream: u.upstream }, u.state === 'down' ? 0 : 1);
      },
    });
    new Gauge({
      name: 'tcpproxy_upstream_state',
      help: 'The upstream state: 1 for the current state, 0 for the others.',
      labelNames: ['listener', 'upstream', 'state'],
      registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const u of upstreams()) {
          for (const state of UPSTREAM_STATES) {
            this.set({ listener: u.listener, upstream: u.upstream, state }, u.state === state ? 1 : 0);
          }
        }
      },
    });
    new Gauge({
      name: 'tcpproxy_upstream_connections_active',
      help: 'Connections currently open to the upstream.',
      labelNames: ['listener', 'upstream'],
      registers,
      collect() {
        this.reset();
        for (const u of upstreams()) this.set({ listener: u.listener, upstream: u.upstream }, u.active);
      },
    });
    new Gauge({
      name: 'tcpproxy_queue_length',
      help: 'Connections waiting for a free slot (on_limit: queue).',
      labelNames: ['listener'],
      registers,
      collect() {
        this.reset();
        for (const listener of listeners()) this.set({ listener }, queueLength(listener));
      },
    });
  }
}
