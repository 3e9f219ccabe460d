/**
 * Turning one listener's config into a plan (listener-context.ts) for its state: the pools'
 * settings, the admission rules, the data pipeline and the PROXY-protocol encoder, all
 * resolved once so that the accept path and the bridge only act on decisions already made.
 * Building reads the state (which pools and rate buckets it has) and never changes it: a
 * plan that is not applied (another listener's failed) leaves nothing behind but what
 * retirePlan() releases.
 */
import type { Logger } from 'pino';
import { AccessList } from '../admission/access-list.js';
import { Admission } from '../admission/admission.js';
import { RateLimiter } from '../admission/rate-limit.js';
import { Schedule } from '../admission/schedule.js';
import { parseExpectation } from '../balancing/health-check.js';
import { UpstreamPool, type HealthCheckOptions, type PoolSettings } from '../balancing/upstream-pool.js';
import { UpstreamQueue } from '../balancing/upstream-queue.js';
import { formatHostPort } from '../net/address.js';
import { ConfigError, type ConfigSnapshot, type ListenerConfig } from '../config/load.js';
import { loadClientOptions, loadServerContext, TlsConfigError } from '../protocol/tls.js';
import { buildPipelineFactory, checkFilters, PipelineSetupError, type DataPipelineFactory } from '../pipeline/pipeline.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { RedisLink } from '../cluster/redis-link.js';
import { encodeV1, encodeV2, type ProxyAddresses } from '../protocol/proxy-protocol.js';
import type { ClientIdentity } from '../proxy/bridge.js';
import { DEFAULT_ROUTE, type ListenerContext, type LocalEnd, type PlannedPool } from '../proxy/listener-context.js';
import type { ListenerState } from '../proxy/listener-state.js';

export interface BuildOptions {
  readonly snapshot: ConfigSnapshot;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  /** The process's Redis link, when some listener has `limits_scope: cluster`. */
  readonly cluster?: RedisLink | undefined;
  /** The clock the access schedule (and the rate limit) read, epoch ms; tests inject one. Default: real time. */
  readonly now?: (() => number) | undefined;
}

/** The plan of `config` for `state` (a new listener's fresh state, or the running one's). Throws a ConfigError or a RangeError. */
export async function buildListenerPlan(config: ListenerConfig, state: ListenerState, options: BuildOptions): Promise<ListenerContext> {
  const { snapshot, logger, metrics, cluster } = options;
  const now = options.now ?? Date.now;
  const send = config.proxy_protocol?.send;
  const healthCheck = config.health_check && healthCheckOptions(config, send);
  const routeSettings: [string, PoolSettings][] = [
    [DEFAULT_ROUTE, { upstreams: upstreamSpecs(config.upstreams), balance: config.balance, healthCheck }],
    ...(config.routes ?? []).map((route): [string, PoolSettings] => [
      route.sni,
      { upstreams: upstreamSpecs(route.upstreams), balance: route.balance ?? config.balance, healthCheck },
    ]),
  ];
  const { tls, upstreamTls } = loadTls(config, snapshot.baseDir);
  const pools = new Map(
    await Promise.all(
      routeSettings.map(async ([route, settings]): Promise<[string, PlannedPool]> => [route, await planPool(state, route, settings, config, logger)]),
    ),
  );
  const pool = pools.get(DEFAULT_ROUTE)!.pool;
  const access = config.access;
  const schedule = access?.schedule && new Schedule(access.schedule);
  const shared = config.limits_scope === 'cluster' ? cluster?.limits(config.name) : undefined;
  const rate = config.new_connections_per_ip;
  // The same rate keeps its buckets: a reload does not hand every client a fresh burst.
  const running = state.applied?.rateLimiter;
  const rateLimiter =
    rate &&
    (running?.enforces(rate.limit, rate.per)
      ? running
      : new RateLimiter({
          limit: rate.limit,
          perMs: rate.per,
          // An injected clock drives the rate too; by default the limiter keeps its monotonic one.
          ...(options.now && { now: options.now }),
        }));
  const admission = new Admission({
    ...(shared && { shared }),
    ...((access?.allow ?? access?.deny) && { access: AccessList.parse(access.allow, access.deny) }),
    ...(schedule && { schedule, now: () => new Date(now()) }),
    ...(rateLimiter && { rateLimit: rateLimiter }),
    limits: state.limits,
    onLimit: config.on_limit,
    queueTimeoutMs: config.queue_timeout,
    queue: state.waiting,
  });
  const pipeline = await loadPipeline(config, snapshot.baseDir, logger);

  const trusted = config.proxy_protocol?.trusted;
  const trustedList = trusted && trusted.length > 0 ? AccessList.parse(trusted, undefined) : undefined;
  const upstreamQueues = config.on_limit === 'queue' ? new Map([...pools.values()].map(({ pool, queue }) => [pool, queue])) : new Map();
  return Object.freeze({
    state,
    name: config.name,
    config,
    logger,
    metrics: metrics.listenerMetrics(config.name),
    admission,
    pool,
    routes: config.routes?.map((route) => ({ sni: route.sni, pool: pools.get(route.sni)!.pool })),
    pools,
    upstreamQueues,
    rateLimiter,
    shared,
    pipeline,
    proxyHeader: send ? proxyHeaderEncoder(send) : undefined,
    tls,
    upstreamTls,
    scheduleCloses: schedule && access?.schedule?.enforce === 'close' ? (at: Date) => windowEnd(schedule, at, now) : undefined,
    proxyTrusted: trustedList ? (ip: string) => trustedList.allows(ip) : undefined,
  });
}

/** A route's pool: the state's (kept across reloads: endpoints, counters, health, its queue), or a new one. */
async function planPool(state: ListenerState, route: string, settings: PoolSettings, config: ListenerConfig, logger: Logger): Promise<PlannedPool> {
  const queueOptions = { maxSize: config.max_queue, timeoutMs: config.queue_timeout };
  const kept = state.pools.get(route);
  const pool = kept?.pool ?? new UpstreamPool({ listener: config.name, logger });
  const queue = kept?.queue ?? new UpstreamQueue(pool, queueOptions);
  return { pool, queue, plan: await pool.prepare(settings) };
}

function upstreamSpecs(upstreams: ListenerConfig['upstreams']): PoolSettings['upstreams'] {
  return upstreams.map((upstream) => ({
    address: formatHostPort(upstream.address.host, upstream.address.port),
    host: upstream.address.host,
    port: upstream.address.port,
    weight: upstream.weight,
    ...(upstream.max_connections !== undefined && { maxConnections: upstream.max_connections }),
  }));
}

/**
 * When the window open at `at` (real time, as the bridge's timers run) ends, read on the
 * schedule's clock `now`: the same instant shifted by that clock's distance from real time.
 */
function windowEnd(schedule: Schedule, at: Date, now: () => number): Date | undefined {
  const skew = now() - Date.now();
  const end = schedule.closesAt(new Date(at.getTime() + skew));
  return end && new Date(end.getTime() - skew);
}

/** Releases what a plan owns once no new connection will use it: its pipeline's capture files. */
export async function retirePlan(context: ListenerContext): Promise<void> {
  await context.pipeline?.close();
}

/** Certificates are read here, so a reload (SIGHUP) picks up renewed ones. */
function loadTls(config: ListenerConfig, baseDir: string): Pick<ListenerContext, 'tls' | 'upstreamTls'> {
  const server = config.tls;
  const client = config.upstream_tls;
  return {
    tls:
      server &&
      withTlsKeyPath(config, 'tls', () =>
        loadServerContext(
          {
            cert: server.cert,
            key: server.key,
            ...(server.ca !== undefined && { ca: server.ca }),
            ...(server.require_client_cert !== undefined && { requireClientCert: server.require_client_cert }),
            ...(server.min_version !== undefined && { minVersion: server.min_version }),
          },
          baseDir,
        ),
      ),
    upstreamTls:
      client &&
      withTlsKeyPath(config, 'upstream_tls', () =>
        loadClientOptions(
          {
            verify: client.verify,
            ...(client.ca !== undefined && { ca: client.ca }),
            ...(client.servername !== undefined && { servername: client.servername }),
            ...(client.cert !== undefined && { cert: client.cert }),
            ...(client.key !== undefined && { key: client.key }),
          },
          baseDir,
        ),
      ),
  };
}

/** An unreadable certificate is a config error naming its key path (exit 2 at start; a failed reload keeps the old config). */
function withTlsKeyPath<T>(config: ListenerConfig, section: 'tls' | 'upstream_tls', load: () => T): T {
  try {
    return load();
  } catch (error) {
    if (error instanceof TlsConfigError) throw new ConfigError([`listeners[${config.index}].${section}.${error.key}: ${error.message}`]);
    throw error;
  }
}

/** Filters and inspection; a plugin or capture file that cannot be set up is a config error too. */
async function loadPipeline(config: ListenerConfig, baseDir: string, logger: Logger): Promise<DataPipelineFactory | undefined> {
  return withPipelineKeyPath(config, () =>
    buildPipelineFactory(
      { ...(config.inspect && { inspect: config.inspect }), ...(config.filters && { filters: config.filters }) },
      { baseDir, logger, listener: config.name },
    ),
  );
}

async function withPipelineKeyPath<T>(config: ListenerConfig, setUp: () => Promise<T>): Promise<T> {
  try {
    return await setUp();
  } catch (error) {
    if (error instanceof PipelineSetupError) throw new ConfigError(error.problems.map((line) => `listeners[${config.index}].${line}`));
    throw error;
  }
}

/**
 * `--check`: what starting would load besides the config file itself (certificates, keys,
 * filter plugins), as the same config errors, without opening sockets or capture files.
 */
export async function checkListenerResources(config: ListenerConfig, baseDir: string): Promise<void> {
  loadTls(config, baseDir);
  await withPipelineKeyPath(config, () => checkFilters(config.filters ?? [], baseDir));
}

function healthCheckOptions(config: ListenerConfig, send: 'v1' | 'v2' | undefined): HealthCheckOptions {
  const check = config.health_check!;
  return {
    intervalMs: check.interval,
    timeoutMs: check.timeout,
    healthyThreshold: check.healthy_threshold,
    unhealthyThreshold: check.unhealthy_threshold,
    ...(check.send !== undefined && { send: Buffer.from(check.send) }),
    ...(check.expect !== undefined && { expect: parseExpectation(check.expect) }),
    // A server that requires PROXY headers gets the LOCAL form from health checks.
    ...(send && { preamble: () => (send === 'v2' ? encodeV2(undefined) : encodeV1(undefined)) }),
  };
}

function proxyHeaderEncoder(version: 'v1' | 'v2'): (client: LocalEnd, identity: ClientIdentity) => Buffer {
  const encode = version === 'v2' ? encodeV2 : encodeV1;
  return (client, identity) => {
    // Chained proxies keep both ends: the destination an accepted header named, else ours.
    const destination = identity.destination ?? { address: client.localAddress ?? '0.0.0.0', port: client.localPort ?? 0 };
    const v6 = identity.ip.includes(':') || (destination.address.includes(':') && !destination.address.startsWith('::ffff:'));
    const addresses: ProxyAddresses = {
      family: v6 ? 'tcp6' : 'tcp4',
      source: { address: identity.ip, port: identity.port },
      destination,
    };
    return encode(addresses);
  };
}
