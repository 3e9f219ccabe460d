/**
 * Turning one listener's config into its ListenerContext: the upstream pool, the
 * admission rules, the data pipeline and the PROXY-protocol encoder, all resolved once
 * so that the accept path and the bridge only act on decisions already made.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { AccessList } from '../admission/access-list.js';
import { Admission } from '../admission/admission.js';
import { ConnectionLimits, type ConnectionLimitOptions } from '../admission/limits.js';
import { RateLimiter } from '../admission/rate-limit.js';
import { Schedule } from '../admission/schedule.js';
import { parseExpectation } from '../balancing/health-check.js';
import { UpstreamPool, type HealthCheckOptions } from '../balancing/upstream-pool.js';
import { UpstreamQueue } from '../balancing/upstream-queue.js';
import { formatHostPort } from '../config/host-port.js';
import { ConfigError, type ConfigSnapshot, type ListenerConfig } from '../config/load.js';
import { loadClientOptions, loadServerContext, TlsConfigError } from '../protocol/tls.js';
import { buildPipelineFactory, checkFilters, PipelineSetupError, type DataPipelineFactory } from '../filters/pipeline.js';
import { LiveFilters } from '../filters/live.js';
import type { ProxyMetrics } from '../observability/metrics.js';
import type { RedisLink } from '../cluster/redis-link.js';
import { encodeV1, encodeV2, type ProxyAddresses } from '../protocol/proxy-protocol.js';
import type { ClientIdentity } from '../proxy/bridge.js';
import type { ListenerContext } from '../proxy/listener-context.js';

export interface BuildOptions {
  readonly snapshot: ConfigSnapshot;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  /** The same listener's context in the running config: pools carry state over, bridges stay listed. */
  readonly previous: ListenerContext | undefined;
  /** A listener created at run time brings its own live filters (a toxiproxy proxy keeps its toxics while disabled). */
  readonly live?: LiveFilters | undefined;
  /** The process's Redis link, when some listener has `limits_scope: cluster`. */
  readonly cluster?: RedisLink | undefined;
  /** The clock the access schedule (and the rate limit) read, epoch ms; tests inject one. Default: real time. */
  readonly now?: (() => number) | undefined;
}

export async function buildListenerContext(config: ListenerConfig, options: BuildOptions): Promise<ListenerContext> {
  const { snapshot, logger, metrics, previous, cluster } = options;
  const now = options.now ?? Date.now;
  const send = config.proxy_protocol?.send;
  const newPool = (upstreams: ListenerConfig['upstreams'], balance: ListenerConfig['balance'], previousPool: UpstreamPool | undefined): UpstreamPool =>
    new UpstreamPool({
      listener: config.name,
      upstreams: upstreams.map((upstream) => ({
        address: formatHostPort(upstream.address.host, upstream.address.port),
        host: upstream.address.host,
        port: upstream.address.port,
        weight: upstream.weight,
        ...(upstream.max_connections !== undefined && { maxConnections: upstream.max_connections }),
      })),
      balance,
      logger,
      ...(config.health_check && { healthCheck: healthCheckOptions(config, send) }),
      ...(previousPool && { previous: previousPool }),
    });
  // The running pool a new one replaces: the listener's own, or the route's with the same sni.
  const previousPool = (sni?: string): UpstreamPool | undefined =>
    sni === undefined ? previous?.pool : previous?.routes?.find((r) => r.sni === sni)?.pool;
  const pool = newPool(config.upstreams, config.balance, previousPool());
  const routes = config.routes?.map((route) => ({
    sni: route.sni,
    pool: newPool(route.upstreams, route.balance ?? config.balance, previousPool(route.sni)),
  }));
  const { tls, upstreamTls } = loadTls(config, snapshot.baseDir);
  const access = config.access;
  // The same limits object across reloads: connections of the old config stay counted (its
  // new limits apply at commit, so that a failed reload leaves the running ones).
  const limits = previous?.limits ?? new ConnectionLimits(limitOptions(config));
  const schedule = access?.schedule && new Schedule(access.schedule);
  const shared = config.limits_scope === 'cluster' ? cluster?.limits(config.name) : undefined;
  const admission = new Admission({
    ...(shared && { shared }),
    ...((access?.allow ?? access?.deny) && { access: AccessList.parse(access.allow, access.deny) }),
    ...(schedule && { schedule, now: () => new Date(now()) }),
    ...(config.new_connections_per_ip && {
      rateLimit: new RateLimiter({
        limit: config.new_connections_per_ip.limit,
        perMs: config.new_connections_per_ip.per,
        // An injected clock drives the rate too; by default the limiter keeps its monotonic one.
        ...(options.now && { now: options.now }),
      }),
    }),
    limits,
    onLimit: config.on_limit,
    queueTimeoutMs: config.queue_timeout,
    maxQueue: config.max_queue,
  });
  const pipeline = await loadPipeline(config, snapshot.baseDir, logger);

  const trusted = config.proxy_protocol?.trusted;
  const trustedList = trusted && trusted.length > 0 ? AccessList.parse(trusted, undefined) : undefined;
  const pools = [pool, ...(routes ?? []).map((route) => route.pool)];
  const upstreamQueues = new Map<UpstreamPool, UpstreamQueue>();
  if (config.on_limit === 'queue') {
    // A pool's waiting line carries over a reload (like the limits): its waiters keep their places.
    const previousQueue = (sni?: string): UpstreamQueue | undefined => {
      const replaced = previousPool(sni);
      return replaced && previous?.upstreamQueues.get(replaced);
    };
    const queueOptions = { maxSize: config.max_queue, timeoutMs: config.queue_timeout };
    upstreamQueues.set(pool, previousQueue() ?? new UpstreamQueue(pool, queueOptions));
    for (const route of routes ?? []) upstreamQueues.set(route.pool, previousQueue(route.sni) ?? new UpstreamQueue(route.pool, queueOptions));
  }
  await Promise.all(pools.map((p) => p.start()));
  return {
    name: config.name,
    config,
    logger,
    pool,
    limits,
    admission,
    shared,
    upstreamQueues,
    pipeline,
    metrics: metrics.listenerMetrics(config.name),
    connections: previous?.connections ?? new Set(),
    live: previous?.live ?? options.live ?? new LiveFilters(config.live_filters),
    proxyHeader: send ? proxyHeaderEncoder(send) : undefined,
    tls,
    upstreamTls,
    routes,
    scheduleCloses: schedule && access?.schedule?.enforce === 'close' ? (at) => windowEnd(schedule, at, now) : undefined,
    proxyTrusted: trustedList ? (ip) => trustedList.allows(ip) : undefined,
  };
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

/**
 * The context now serves new connections (start, or a reload's swap): its pools take over
 * from the ones they replace, and its upstream queues (some carried over) take its limits.
 * Waiters in a queue the new config has no more (no longer `on_limit: queue`, route gone)
 * are left to run out, as the old admission queue is.
 */
export function commitContext(context: ListenerContext, previous: ListenerContext | undefined): void {
  for (const pool of contextPools(context)) pool.takeOver();
  context.limits.reconfigure(limitOptions(context.config));
  context.shared?.configure({
    ...limitOptions(context.config),
    newConnectionsPerIp: context.config.new_connections_per_ip && { limit: context.config.new_connections_per_ip.limit, perMs: context.config.new_connections_per_ip.per },
  });
  // The live filters carry over a reload; whether every connection follows them is the config's.
  context.live.always = context.config.live_filters;
  const kept = new Set(context.upstreamQueues.values());
  for (const [pool, queue] of context.upstreamQueues) queue.reconfigure(pool, { maxSize: context.config.max_queue, timeoutMs: context.config.queue_timeout });
  for (const queue of previous?.upstreamQueues.values() ?? []) {
    if (!kept.has(queue)) setTimeout(() => queue.close(), previous!.config.queue_timeout + 1_000).unref();
  }
}

function limitOptions(config: ListenerConfig): ConnectionLimitOptions {
  return {
    ...(config.max_connections !== undefined && { maxConnections: config.max_connections }),
    ...(config.max_connections_per_ip !== undefined && { maxConnectionsPerIp: config.max_connections_per_ip }),
  };
}

function contextPools(context: ListenerContext): UpstreamPool[] {
  return [context.pool, ...(context.routes ?? []).map((route) => route.pool)];
}

/**
 * Releases what a context owns once no new connection will use it (health checks,
 * capture files). Its admission queue is left to run out first: queued clients of the
 * old config still get their slot or their queue_timeout.
 */
export async function retireContext(context: ListenerContext): Promise<void> {
  for (const pool of contextPools(context)) pool.close();
  setTimeout(() => context.admission.close(), context.config.queue_timeout + 1_000).unref();
  await context.pipeline?.close();
}

/** Certificates are read here, so a reload (SIGHUP) picks up renewed ones. */
function loadTls(config: ListenerConfig, baseDir: string): Pick<ListenerContext, 'tls' | 'upstreamTls'> {
  const server = config.tls;
  const client = config.upstream_tls;
  return {
    tls: server && withTlsKeyPath(config, 'tls', () => loadServerContext(
      {
        cert: server.cert,
        key: server.key,
        ...(server.ca !== undefined && { ca: server.ca }),
        ...(server.require_client_cert !== undefined && { requireClientCert: server.require_client_cert }),
        ...(server.min_version !== undefined && { minVersion: server.min_version }),
      },
      baseDir,
    )),
    upstreamTls: client && withTlsKeyPath(config, 'upstream_tls', () => loadClientOptions(
      {
        verify: client.verify,
        ...(client.ca !== undefined && { ca: client.ca }),
        ...(client.servername !== undefined && { servername: client.servername }),
        ...(client.cert !== undefined && { cert: client.cert }),
        ...(client.key !== undefined && { key: client.key }),
      },
      baseDir,
    )),
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

function proxyHeaderEncoder(version: 'v1' | 'v2'): (client: Socket, identity: ClientIdentity) => Buffer {
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
