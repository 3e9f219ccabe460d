/**
 * Everything a listener's connections need, resolved once per config snapshot so that
 * the accept path and the bridge never look anything up per connection or per chunk.
 * A reload builds a new context and swaps it in the Listener; established bridges keep
 * the context they started with.
 */
import type { Logger } from 'pino';
import type { Admission } from '../admission/admission.js';
import type { ConnectionLimits } from '../admission/limits.js';
import type { UpstreamPool } from '../balancing/upstream-pool.js';
import type { UpstreamQueue } from '../balancing/upstream-queue.js';
import type { ClusterLimits } from '../cluster/cluster-limits.js';
import type { ListenerConfig } from '../config/load.js';
import type { LiveFilters } from '../pipeline/live.js';
import type { DataPipelineFactory } from '../pipeline/pipeline.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import type { ClientTlsOptions, ServerTlsOptions } from '../protocol/tls.js';
import type { Bridge, ClientIdentity } from './bridge.js';
import type { PlainSocket } from './raw-socket.js';

/** The proxy's own end of a client connection (a net.Socket's or a raw socket's). */
export type LocalEnd = Pick<PlainSocket, 'localAddress' | 'localPort'>;

export interface SniRoute {
  readonly sni: string;
  readonly pool: UpstreamPool;
}

export interface ListenerContext {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly logger: Logger;
  readonly pool: UpstreamPool;
  /** Concurrent-connection counts, shared by the contexts of one listener across reloads. */
  readonly limits: ConnectionLimits;
  readonly admission: Admission;
  /** `limits_scope: cluster`: the listener's ledger of shared limits (kept across reloads by the Redis link). */
  readonly shared?: ClusterLimits | undefined;
  /** With `on_limit: queue`: the waiting line of each pool (listener's and routes'), for full upstreams. */
  readonly upstreamQueues: ReadonlyMap<UpstreamPool, UpstreamQueue>;
  readonly pipeline: DataPipelineFactory | undefined;
  /** Filters changed at run time (toxics, admin API): the same object across reloads. */
  readonly live: LiveFilters;
  readonly metrics: ListenerMetrics;
  /** Open bridges of this listener, across reloads (admin API, shutdown). */
  readonly connections: Set<Bridge>;
  /** The PROXY header to send first on each upstream connection, when configured. */
  readonly proxyHeader: ((client: LocalEnd, identity: ClientIdentity) => Buffer) | undefined;
  /** TLS termination (`tls`): the options each accepted socket is wrapped with. */
  readonly tls: ServerTlsOptions | undefined;
  /** TLS origination (`upstream_tls`). */
  readonly upstreamTls: ClientTlsOptions | undefined;
  /** SNI routing: pools by server-name pattern, tried in order; `pool` is the default route. */
  readonly routes: readonly SniRoute[] | undefined;
  /** With `schedule.enforce: close`: when the access window open at `at` ends. */
  readonly scheduleCloses: ((at: Date) => Date | undefined) | undefined;
  /** Whether a peer may send us PROXY headers (`proxy_protocol.trusted`); undefined = anyone. */
  readonly proxyTrusted: ((ip: string) => boolean) | undefined;
}
