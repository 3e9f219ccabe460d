/**
 * Prometheus metrics for the proxy, on a registry of their own (never prom-client's global one,
 * so that tests and embedders can run several proxies in one process).
 *
 * Why counters are plain numbers: prom-client hashes and validates the label set on every
 * `inc()`, even on a "child" from `labels()`. The listener and bridge call these recorders once
 * or twice per connection, so the recorders only bump numbers in an object resolved once per
 * listener (and once per upstream); the prom-client counters are filled from those numbers at
 * scrape time by `collect` callbacks. Histograms are ours too (bucket-counts.ts): an
 * observation is a bucket search and two additions on counts bound once per listener and
 * upstream, where prom-client's `observe()` would hash the label set each time.
 *
 * prom-client itself is loaded on the first scrape (`text()`, `json()`): it and its default
 * process metrics (an event-loop-delay sampler, a GC observer) cost memory at start and work
 * all along, and a proxy nobody scrapes needs none of it. Process metrics therefore count
 * from the first scrape (CPU seconds and memory are read from the process, so they are whole).
 *
 * State that belongs to the runtime (upstream health, active connections per upstream, queue
 * lengths, bytes of connections still open) is pulled from `MetricSources` at scrape time.
 */
import type { Registry } from 'prom-client';
import { requireCommonJs } from '../deps/commonjs.js';
import { BucketCounts, histogramMetric, type LabeledCounts } from './bucket-counts.js';
import { CLOSE_REASONS, REJECT_REASONS, type CloseReason, type RejectReason } from './reasons.js';
import type { ListenerStats as ListenerStatsOf, StatsDocument, UpstreamStats, UpstreamState } from './stats-document.js';

type PromClient = typeof import('prom-client');

export const UPSTREAM_STATES: readonly UpstreamState[] = ['healthy', 'down', 'draining'];

/**
 * What the listener and bridge report. Pairing rule: every `bridged()` is followed by exactly
 * one `closed()` (that is what keeps the active gauge right); a refused connection gets
 * `rejected()` only, and a client that leaves before its upstream is connected gets neither.
 */
export interface ListenerMetrics {
  /** A client now connected to its upstream, bytes about to flow: tcpproxy_connections_total, tcpproxy_connections_active + 1. */
  bridged(): void;
  /** A connection refused (never `bridged()`): tcpproxy_rejections_total{reason}. */
  rejected(reason: RejectReason): void;
  /** An upstream connection established after `seconds`: connect histogram, per-upstream total. */
  connected(upstream: string, seconds: number): void;
  /** An upstream connect attempt that failed or timed out. */
  connectFailed(upstream: string): void;
  /** The end of an accepted connection: closes by reason, bytes, duration, active - 1. */
  closed(reason: CloseReason, upstream: string | null, bytesFromClient: number, bytesToClient: number, seconds: number): void;
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

/** The cluster metrics, exported once `clusterMetrics()` was called: processes without `cluster` export none of them. */
class ClusterRecorder implements ClusterMetrics {
  up = 0;
  readonly decisions = new Map<string, { allow: number; deny: number }>();
  readonly active = new Map<string, number>();
  readonly seconds: LabeledCounts = { labels: {}, counts: new BucketCounts(REDIS_BUCKETS) };
  private registered = false;

  redisUp(up: boolean): void {
    this.up = up ? 1 : 0;
  }

  roundTrip(seconds: number): void {
    this.seconds.counts.observe(seconds);
  }

  onErrorDecision(listener: string, decision: 'allow' | 'deny'): void {
    let counts = this.decisions.get(listener);
    if (counts === undefined) this.decisions.set(listener, (counts = { allow: 0, deny: 0 }));
    counts[decision]++;
  }

  clusterActive(listener: string, active: number): void {
    this.active.set(listener, active);
  }

  /** Once per registry (the first scrape, or the first call after it). */
  register(prom: PromClient, registers: Registry[]): void {
    if (this.registered) return;
    this.registered = true;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- collect() below runs with the gauge as `this`
    const recorder = this;
    histogramMetric(registers[0]!, 'tcpproxy_cluster_redis_seconds', 'Round-trip time of the cluster-limit scripts sent to Redis.', () => [recorder.seconds]);
    new prom.Gauge({
      name: 'tcpproxy_cluster_redis_up',
      help: '1 while the Redis of limits_scope: cluster answers, 0 while on_error decides.',
      registers,
      // Merged across workers: up only when every worker reaches Redis.
      aggregator: 'min',
      collect() {
        this.set(recorder.up);
      },
    });
    scrapedCounter(
      prom,
      registers,
      'tcpproxy_cluster_on_error_total',
      'Admissions decided by cluster.on_error because Redis was down or slow, by decision.',
      ['listener', 'decision'],
      function* () {
        for (const [listener, counts] of recorder.decisions) {
          yield [{ listener, decision: 'allow' }, counts.allow];
          yield [{ listener, decision: 'deny' }, counts.deny];
        }
      },
    );
    new prom.Gauge({
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

/** The /api/stats figures, with this module's reason vocabulary (stats-document.ts says why they live there). */
export type ListenerStats = ListenerStatsOf<RejectReason, CloseReason>;
export type MetricsSnapshot = StatsDocument<RejectReason, CloseReason>;
export type { UpstreamStats, UpstreamState };

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
function scrapedCounter(prom: PromClient, registers: Registry[], name: string, help: string, labelNames: string[], samples: () => Iterable<Sample>): void {
  new prom.Counter({
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

class UpstreamRecorder implements LabeledCounts {
  readonly labels: { listener: string; upstream: string };
  /** tcpproxy_upstream_connect_seconds of this upstream. */
  readonly counts = new BucketCounts(CONNECT_BUCKETS);
  connects = 0;
  failures = 0;
  bytesFromClient = 0;
  bytesToClient = 0;

  constructor(listener: string, upstream: string) {
    this.labels = { listener, upstream };
  }
}

class ListenerRecorder implements ListenerMetrics, LabeledCounts {
  readonly labels: { listener: string };
  /** tcpproxy_connection_duration_seconds of this listener. */
  readonly counts = new BucketCounts(DURATION_BUCKETS);
  readonly upstreams = new Map<string, UpstreamRecorder>();
  connectionsTotal = 0;
  active = 0;
  bytesFromClient = 0;
  bytesToClient = 0;
  readonly rejections = zeroCounts(REJECT_REASONS);
  readonly closes = zeroCounts(CLOSE_REASONS);

  constructor(readonly name: string) {
    this.labels = { listener: name };
  }

  bridged(): void {
    this.connectionsTotal++;
    this.active++;
  }

  rejected(reason: RejectReason): void {
    this.rejections[reason]++;
  }

  connected(upstream: string, seconds: number): void {
    const recorder = this.upstream(upstream);
    recorder.connects++;
    recorder.counts.observe(seconds);
  }

  connectFailed(upstream: string): void {
    this.upstream(upstream).failures++;
  }

  closed(reason: CloseReason, upstream: string | null, bytesFromClient: number, bytesToClient: number, seconds: number): void {
    this.closes[reason]++;
    this.active--;
    this.bytesFromClient += bytesFromClient;
    this.bytesToClient += bytesToClient;
    if (upstream !== null) {
      const recorder = this.upstream(upstream);
      recorder.bytesFromClient += bytesFromClient;
      recorder.bytesToClient += bytesToClient;
    }
    this.counts.observe(seconds);
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
  /** What `text()` answers in: Prometheus' text format 0.0.4 (prom-client's default registry type). */
  readonly contentType = 'text/plain; version=0.0.4; charset=utf-8';
  private readonly recorders = new Map<string, ListenerRecorder>();
  private sources: MetricSources | null = null;
  private cluster: ClusterRecorder | undefined;
  /** Built on the first scrape (see the top of this file). */
  private registry: { prom: PromClient; registry: Registry } | undefined;

  constructor(private readonly options: ProxyMetricsOptions = {}) {}

  /** The recorder for one listener; cached, so callers may also keep the returned object. */
  listenerMetrics(listener: string): ListenerMetrics {
    return this.recorder(listener);
  }

  /** The cluster-limit metrics (registered on the first call). */
  clusterMetrics(): ClusterMetrics {
    if (this.cluster === undefined) {
      const cluster = (this.cluster = new ClusterRecorder());
      // Scraped before `cluster` was configured (a reload enabled it): export it from now on.
      if (this.registry) cluster.register(this.registry.prom, [this.registry.registry]);
    }
    return this.cluster;
  }

  setSources(sources: MetricSources): void {
    this.sources = sources;
  }

  /** The Prometheus text exposition of every metric. */
  async text(): Promise<string> {
    return this.promRegistry().registry.metrics();
  }

  /** Every metric as prom-client's JSON, which the primary merges across workers (AggregatorRegistry). */
  async json(): Promise<object[]> {
    return this.promRegistry().registry.getMetricsAsJSON();
  }

  /** prom-client is loaded on the first scrape: a proxy nobody scrapes never pays for it. */
  private promRegistry(): { prom: PromClient; registry: Registry } {
    if (!this.registry) {
      const prom = requireCommonJs('prom-client');
      this.registry = { prom, registry: this.buildRegistry(prom) };
    }
    return this.registry;
  }

  private buildRegistry(prom: PromClient): Registry {
    // A registry of our own, never prom-client's global one: tests and embedders may run several proxies in one process.
    const registry = new prom.Registry();
    const registers = [registry];
    const recorders = this.recorders;
    histogramMetric(registry, 'tcpproxy_upstream_connect_seconds', 'Time to establish the upstream TCP connection.', function* () {
      for (const listener of recorders.values()) yield* listener.upstreams.values();
    });
    histogramMetric(registry, 'tcpproxy_connection_duration_seconds', 'Lifetime of proxied connections, from accept to close.', () => recorders.values());
    this.registerListenerCounters(prom, registers);
    this.registerUpstreamCounters(prom, registers);
    this.registerRuntimeGauges(prom, registers);
    this.cluster?.register(prom, registers);
    if (this.options.collectDefault === true) prom.collectDefaultMetrics({ register: registry, prefix: 'tcpproxy_' });
    return registry;
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
      recorder = new ListenerRecorder(listener);
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
  private registerListenerCounters(prom: PromClient, registers: Registry[]): void {
    const recorders = () => this.listenerRecorders();
    const liveBytes = () => this.liveBytesByListener();
    scrapedCounter(
      prom,
      registers,
      'tcpproxy_connections_total',
      'Connections proxied by the listener (accepted and connected to an upstream).',
      ['listener'],
      function* () {
        for (const r of recorders()) yield [r.labels, r.connectionsTotal];
      },
    );
    scrapedCounter(prom, registers, 'tcpproxy_rejections_total', 'Connections refused before being proxied, by reason.', ['listener', 'reason'], function* () {
      for (const r of recorders()) for (const reason of REJECT_REASONS) yield [{ listener: r.name, reason }, r.rejections[reason]];
    });
    scrapedCounter(prom, registers, 'tcpproxy_closes_total', 'Proxied connections closed, by reason.', ['listener', 'reason'], function* () {
      for (const r of recorders()) for (const reason of CLOSE_REASONS) yield [{ listener: r.name, reason }, r.closes[reason]];
    });
    scrapedCounter(
      prom,
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
    new prom.Gauge({
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

  private registerUpstreamCounters(prom: PromClient, registers: Registry[]): void {
    const recorders = this.recorders;
    function* upstreamRecorders(): Generator<UpstreamRecorder> {
      for (const listener of recorders.values()) yield* listener.upstreams.values();
    }
    scrapedCounter(prom, registers, 'tcpproxy_upstream_connections_total', 'Upstream connections established.', ['listener', 'upstream'], function* () {
      for (const u of upstreamRecorders()) yield [u.labels, u.connects];
    });
    scrapedCounter(
      prom,
      registers,
      'tcpproxy_upstream_connect_failures_total',
      'Upstream connect attempts that failed or timed out.',
      ['listener', 'upstream'],
      function* () {
        for (const u of upstreamRecorders()) yield [u.labels, u.failures];
      },
    );
    scrapedCounter(
      prom,
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
  private registerRuntimeGauges(prom: PromClient, registers: Registry[]): void {
    const upstreams = () => this.sources?.upstreams() ?? [];
    const listeners = () => this.sources?.listeners() ?? [];
    const queueLength = (listener: string) => this.sources?.queueLength(listener) ?? 0;
    new prom.Gauge({
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
    new prom.Gauge({
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
    new prom.Gauge({
      name: 'tcpproxy_upstream_connections_active',
      help: 'Connections currently open to the upstream.',
      labelNames: ['listener', 'upstream'],
      registers,
      collect() {
        this.reset();
        for (const u of upstreams()) this.set({ listener: u.listener, upstream: u.upstream }, u.active);
      },
    });
    new prom.Gauge({
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
