/**
 * The figures of /api/stats as JSON documents. Types only and no imports: the dashboard's
 * browser script (src/admin/dashboard/browser, DOM library, no Node types) compiles this file
 * too. The reason types are parameters: metrics.ts binds them to its reason vocabulary, the
 * browser reads them as plain strings.
 */

export type UpstreamState = 'healthy' | 'down' | 'draining';

/** One listener's figures, as served in /api/stats (bytes include connections still open). */
export interface ListenerStats<Reject extends string = string, Close extends string = string> {
  name: string;
  active: number;
  connections_total: number;
  queue_length: number;
  bytes_from_client: number;
  bytes_to_client: number;
  rejections: Record<Reject, number>;
  closes: Record<Close, number>;
}

export interface UpstreamStats {
  listener: string;
  address: string;
  state: UpstreamState;
  active: number;
  connections_total: number;
  connect_failures: number;
}

export interface StatsDocument<Reject extends string = string, Close extends string = string> {
  /** Milliseconds since the epoch when the snapshot was taken. */
  time: number;
  listeners: ListenerStats<Reject, Close>[];
  upstreams: UpstreamStats[];
}
