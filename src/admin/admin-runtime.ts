/**
 * What the admin server needs from the proxy runtime. The runtime (src/runtime) implements it;
 * the tests use an in-memory fake. Methods may answer synchronously or, when the answer has to
 * be gathered from worker processes, with a promise.
 */
import type { ClusterStatus } from '../cluster/redis-link.js';
import type { LiveFilters } from '../pipeline/live.js';
import type { MetricsSnapshot } from '../observability/metrics.js';
import type { ConnectionInfo, ListenerInfo, UpstreamView } from './api-payloads.js';

export type { ConnectionInfo, ListenerInfo, UpstreamView };

type MaybePromise<T> = T | Promise<T>;

/** The /api/stats document: the metrics snapshot, plus whatever the runtime wants to add. */
export interface StatsSnapshot extends MetricsSnapshot {
  uptime_s?: number;
  version?: string;
  workers?: number;
  /** The process that owns the listeners (the primary with --workers): what `tcpproxy stop` signals. */
  pid?: number;
  /** With --workers: each worker's pid. */
  worker_pids?: number[];
  /** Where each listener is bound. */
  listening?: { name: string; address: string; port: number }[];
  /** With `limits_scope: cluster`: the Redis link's state and the shared counts. */
  cluster?: ClusterStatus;
  /** The run-time control routes (/api/listeners...) are served. */
  run_time_control?: boolean;
}

export type UpgradeResult = { ok: true; replaced: { old_pid: number; new_pid: number }[] } | { ok: false; error: string };

export type ReloadResult = { ok: true } | { ok: false; error: string };
export type UpstreamAction = 'drain' | 'enable';
export type UpstreamActionResult = 'ok' | 'unknown_listener' | 'unknown_upstream';

/** A run-time change to a listener's upstreams (HAProxy's add server / set server / del server). */
export type UpstreamChange =
  | { op: 'add'; address: string; host: string; port: number; weight: number; max_connections?: number }
  | { op: 'update'; address: string; weight?: number; max_connections?: number | null }
  | { op: 'remove'; address: string };

/** The stable codes of a refused change: unknown_listener, or the pool's UpstreamChangeError codes. */
export type UpstreamChangeResult = { ok: true; upstream: UpstreamView } | { ok: false; code: string; error: string };
/** Listeners and filters changed at run time (one process only: absent with workers > 1). */
export interface RuntimeControl {
  listeners(): ListenerInfo[];
  /** A `listeners[]` entry of the config; rejects with a ConfigError or a ListenError. */
  addListener(raw: unknown): Promise<{ address: string; port: number }>;
  /** Only listeners created at run time: 'configured' for one from the config file. */
  removeListener(name: string): Promise<'ok' | 'unknown' | 'configured'>;
  liveFilters(name: string): LiveFilters | undefined;
  /** The listener an open connection belongs to. */
  listenerOf(connectionId: string): string | undefined;
  /** Where a filter plugin's relative path is resolved (the config file's folder). */
  baseDir(): string;
}

export interface AdminRuntime {
  control?: RuntimeControl | undefined;
  stats(): MaybePromise<StatsSnapshot>;
  connections(): MaybePromise<ConnectionInfo[]>;
  /** Closes the connection with reason `admin`; false when no such connection. */
  closeConnection(id: string): MaybePromise<boolean>;
  reload(): Promise<ReloadResult>;
  upstreamAction(listener: string, address: string, action: UpstreamAction): MaybePromise<UpstreamActionResult>;
  /** A listener's upstreams as currently set; undefined when no such listener. */
  listUpstreams(listener: string): MaybePromise<UpstreamView[] | undefined>;
  /** Applies one run-time upstream change (all workers); the config file wins at the next reload. */
  changeUpstream(listener: string, change: UpstreamChange): MaybePromise<UpstreamChangeResult>;
  /**
   * Listeners bound and at least one healthy upstream each; and, when a listener has
   * `limits_scope: cluster` with `cluster.on_error: deny`, Redis reachable.
   */
  ready(): MaybePromise<boolean>;
  /** The Prometheus exposition (the primary aggregates across workers). */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Starts a graceful stop, as SIGTERM does (POST /api/stop); absent where the process is not ours to stop. */
  requestStop?(): void;
  /** Replaces the workers with fresh ones (POST /api/upgrade); absent without --workers. */
  upgrade?(): Promise<UpgradeResult>;
}
