/**
 * What the admin server needs from the proxy runtime. The runtime (src/runtime) implements it;
 * the tests use an in-memory fake. Methods may answer synchronously or, when the answer has to
 * be gathered from worker processes, with a promise.
 */
import type { ClusterStatus } from '../cluster/redis-link.js';
import type { MetricsSnapshot } from '../observability/metrics.js';

type MaybePromise<T> = T | Promise<T>;

export interface ConnectionInfo {
  id: string;
  listener: string;
  /** "ip:port" */
  client: string;
  /** "ip:port", or null while the upstream is not connected yet */
  upstream: string | null;
  age_ms: number;
  bytes_from_client: number;
  bytes_to_client: number;
}

/** The /api/stats document: the metrics snapshot, plus whatever the runtime wants to add. */
export interface StatsSnapshot extends MetricsSnapshot {
  uptime_s?: number;
  version?: string;
  workers?: number;
  /** With `limits_scope: cluster`: the Redis link's state and the shared counts. */
  cluster?: ClusterStatus;
}

export type ReloadResult = { ok: true } | { ok: false; error: string };
export type UpstreamAction = 'drain' | 'enable';
export type UpstreamActionResult = 'ok' | 'unknown_listener' | 'unknown_upstream';

export interface AdminRuntime {
  stats(): MaybePromise<StatsSnapshot>;
  connections(): MaybePromise<ConnectionInfo[]>;
  /** Closes the connection with reason `admin`; false when no such connection. */
  closeConnection(id: string): MaybePromise<boolean>;
  reload(): Promise<ReloadResult>;
  upstreamAction(listener: string, address: string, action: UpstreamAction): MaybePromise<UpstreamActionResult>;
  /**
   * Listeners bound and at least one healthy upstream each; and, when a listener has
   * `limits_scope: cluster` with `cluster.on_error: deny`, Redis reachable.
   */
  ready(): MaybePromise<boolean>;
  /** The Prometheus exposition (the primary aggregates across workers). */
  metrics(): Promise<{ contentType: string; body: string }>;
}
