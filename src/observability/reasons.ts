/**
 * Why a connection ended (`close`) or was refused (`reject`): the vocabulary the access log's
 * `reason` field, the metrics' `reason` label and `/api/stats` share, and the README lists
 * (test/observability/readme-reasons.test.ts keeps them in step). Adding a reason here adds
 * it everywhere.
 */
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
