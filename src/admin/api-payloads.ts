/**
 * The JSON documents of the admin API that the dashboard reads, as they travel on the wire.
 * Both sides compile this file: the server (src/admin) and the browser script
 * (src/admin/dashboard/browser, DOM library, no Node types), so it holds types only and
 * imports only modules that do the same. The server's richer types must stay assignable to
 * these (routes.ts checks /api/stats with `satisfies`).
 */
import type { StatsDocument } from '../observability/stats-document.js';

/** One entry of GET /api/connections. */
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

/** One listener of GET /api/listeners (run-time control). */
export interface ListenerInfo {
  name: string;
  address: string;
  port: number;
  /** Created at run time (kept by a reload), or from the config file. */
  runtime: boolean;
  /** What each live filter was added with. */
  live_filters: Readonly<Record<string, unknown>>[];
}

/** One upstream of a listener as the run-time upstream API shows it. */
export interface UpstreamView {
  /** As configured or added: "HOST:PORT". */
  address: string;
  weight: number;
  /** null: no limit. */
  max_connections: number | null;
  /** Its resolved endpoints, with the connections each carries now. */
  endpoints: { address: string; state: string; active: number }[];
}

/** The part of GET /api/stats that the dashboard shows. */
export interface StatsPayload extends StatsDocument {
  /** With `limits_scope: cluster`. */
  cluster?: {
    state: 'up' | 'down';
    /** The Redis URL without its password. */
    redis: string;
    on_error: 'allow' | 'deny';
    listeners: { name: string; local: number; cluster: number }[];
  };
  run_time_control?: boolean;
}
