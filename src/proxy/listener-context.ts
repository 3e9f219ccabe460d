/**
 * A listener has two halves with different lifetimes:
 * - its state (listener-state.ts), which lives as long as the listener and survives every
 *   reload: open connections, limit counts, the waiting lines, the upstream pools (their
 *   endpoints' counters and health), the live filters;
 * - a plan per config snapshot (ListenerPlan), immutable and built completely before
 *   anything changes: the config, the admission rules, the pools' settings and balancers,
 *   the data pipeline, TLS contexts, SNI routes, the PROXY-header encoder, the schedule.
 * A reload builds a plan for every listener (a failure changes nothing), then swaps each
 * state's plan: one pointer. A connection is handed its listener's context (the plan in force
 * when it was accepted, and the state) and keeps that plan to the end: the accept path and
 * the bridge never look anything up per connection or per chunk.
 */
import type { Logger } from 'pino';
import type { Admission } from '../admission/admission.js';
import type { RateLimiter } from '../admission/rate-limit.js';
import type { PoolPlan, UpstreamPool } from '../balancing/upstream-pool.js';
import type { UpstreamQueue } from '../balancing/upstream-queue.js';
import type { ClusterLimits } from '../cluster/cluster-limits.js';
import type { ListenerConfig } from '../config/load.js';
import type { DataPipelineFactory } from '../pipeline/pipeline.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import type { ClientTlsOptions, ServerTlsOptions } from '../protocol/tls.js';
import type { ClientIdentity } from './bridge.js';
import type { ListenerState } from './listener-state.js';
import type { PlainSocket } from './raw-socket.js';

/** The proxy's own end of a client connection (a net.Socket's or a raw socket's). */
export type LocalEnd = Pick<PlainSocket, 'localAddress' | 'localPort'>;

export interface SniRoute {
  readonly sni: string;
  readonly pool: UpstreamPool;
}

/** One upstream pool of a plan (the listener's own, or an SNI route's): the long-lived pool, its waiting line, and this snapshot's settings for it. */
export interface PlannedPool {
  readonly pool: UpstreamPool;
  readonly queue: UpstreamQueue;
  readonly plan: PoolPlan;
}

/** The key of the listener's own upstreams among its pools; a route's key is its `sni`. */
export const DEFAULT_ROUTE = '';

export interface ListenerPlan {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly logger: Logger;
  /** The listener's metric recorder (its counters are ProxyMetrics', per listener name). */
  readonly metrics: ListenerMetrics;
  readonly admission: Admission;
  /** The listener's own upstreams (the default route). */
  readonly pool: UpstreamPool;
  /** SNI routing: pools by server-name pattern, tried in order; `pool` is the default route. */
  readonly routes: readonly SniRoute[] | undefined;
  /** Every pool of the plan by route (DEFAULT_ROUTE, or the sni); applying the plan applies theirs. */
  readonly pools: ReadonlyMap<string, PlannedPool>;
  /** With `on_limit: queue`: the waiting line of each pool, for full upstreams. */
  readonly upstreamQueues: ReadonlyMap<UpstreamPool, UpstreamQueue>;
  /** `new_connections_per_ip`: the buckets, kept by the next plan when it keeps the rate. */
  readonly rateLimiter: RateLimiter | undefined;
  /** `limits_scope: cluster`: the listener's ledger of shared limits (the Redis link keeps it across reloads). */
  readonly shared: ClusterLimits | undefined;
  readonly pipeline: DataPipelineFactory | undefined;
  /** The PROXY header to send first on each upstream connection, when configured. */
  readonly proxyHeader: ((client: LocalEnd, identity: ClientIdentity) => Buffer) | undefined;
  /** TLS termination (`tls`): the options each accepted socket is wrapped with. */
  readonly tls: ServerTlsOptions | undefined;
  /** TLS origination (`upstream_tls`). */
  readonly upstreamTls: ClientTlsOptions | undefined;
  /** With `schedule.enforce: close`: when the access window open at `at` ends. */
  readonly scheduleCloses: ((at: Date) => Date | undefined) | undefined;
  /** Whether a peer may send us PROXY headers (`proxy_protocol.trusted`); undefined = anyone. */
  readonly proxyTrusted: ((ip: string) => boolean) | undefined;
}

/** What a connection is handed: a plan, bound to the state of the listener it was built for. */
export interface ListenerContext extends ListenerPlan {
  readonly state: ListenerState;
}
