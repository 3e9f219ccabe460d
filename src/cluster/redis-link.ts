/**
 * The process's one connection to the `cluster` Redis, shared by the ClusterLimits of every
 * listener with `limits_scope: cluster`. It owns:
 * - the client (ioredis, loaded on first use: a process without `cluster` never loads it),
 *   set to fail fast rather than queue: a command sent while disconnected fails at once
 *   (then `on_error` decides), and nothing is resent after a reconnect (the SYNC is);
 * - the up/down state, logged on each transition only (never per connection), and exported
 *   as a gauge. Down = not connected, or an acquire got no answer within `timeout` (a hung
 *   Redis keeps its TCP connection): until any answer comes, admissions do not wait;
 * - the lease renewal: every `lease`/3 each listener renews (and sends its batched releases);
 *   a process that dies is reaped by the others within `lease` + `lease`/3;
 * - on every down -> up transition, a resync of every listener's ledger (Redis may have
 *   restarted empty, or commands may have been lost with the connection).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Redis as RedisClient } from 'ioredis';
import type { ClusterConfig } from '../config/schema.js';
import type { ClusterMetrics } from '../observability/metrics.js';
import { ClusterLimits, type ScriptName, type ScriptRunner } from './cluster-limits.js';
import { ACQUIRE, ADJUST, SYNC } from './scripts.js';
import { requireCommonJs } from '../deps/commonjs.js';

/** How long start() waits for the first connection before carrying on under `on_error`. */
const FIRST_CONNECT_WAIT_MS = 1_000;
/** While stalled, how often a PING asks whether Redis answers again. */
const PROBE_INTERVAL_MS = 500;
/** Shutdown: the leave scripts and QUIT get this long, then the socket is dropped. */
const CLOSE_WAIT_MS = 1_000;
/** Reconnect back-off: 50 ms doubling up to 1 s (a restarted Redis is found within about 1 s). */
const MAX_RECONNECT_DELAY_MS = 1_000;

const COMMANDS: Record<ScriptName, { name: string; lua: string; keys: number }> = {
  acquire: { name: 'tcpproxyAcquire', lua: ACQUIRE, keys: 5 },
  adjust: { name: 'tcpproxyAdjust', lua: ADJUST, keys: 4 },
  sync: { name: 'tcpproxySync', lua: SYNC, keys: 4 },
};

type ScriptCommand = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

export type LinkState = 'up' | 'down';

export interface ClusterStatus {
  state: LinkState;
  /** The Redis URL without its password. */
  redis: string;
  on_error: 'allow' | 'deny';
  lease_ms: number;
  /** Per listener with cluster scope: connections held by this process, and across the cluster (last answer). */
  listeners: { name: string; local: number; cluster: number }[];
}

/** `redis://user:secret@host` -> `redis://user:***@host`: URLs are logged and shown on the dashboard. */
export function redactRedisUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return text;
  }
}

export class RedisLink implements ScriptRunner {
  readonly processId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  readonly leaseMs: number;
  readonly keyTtlMs: number;
  readonly timeoutMs: number;
  readonly onError: 'allow' | 'deny';
  readonly #config: ClusterConfig;
  readonly #client: RedisClient;
  readonly #logger: Logger;
  readonly metrics: ClusterMetrics;
  readonly #ledgers = new Map<string, ClusterLimits>();
  #connected = false;
  #stalled = false;
  /** undefined until the first connection attempt settles: the first state is logged either way. */
  #state: LinkState | undefined;
  #probe: NodeJS.Timeout | undefined;
  readonly #renewTimer: NodeJS.Timeout;
  #closed = false;

  private constructor(client: RedisClient, config: ClusterConfig, logger: Logger, metrics: ClusterMetrics) {
    this.#client = client;
    this.#config = config;
    this.#logger = logger;
    this.metrics = metrics;
    this.leaseMs = config.lease;
    this.keyTtlMs = config.lease * 3;
    this.timeoutMs = config.timeout;
    this.onError = config.on_error;
    for (const { name, lua, keys } of Object.values(COMMANDS)) client.defineCommand(name, { lua, numberOfKeys: keys });
    client.on('ready', () => {
      this.#connected = true;
      this.#unstall();
      this.#update('connected');
    });
    client.on('close', () => {
      this.#connected = false;
      this.#update('connection closed');
    });
    // Connection errors are followed by 'close' and a reconnect; the transition is what gets logged.
    client.on('error', (error: Error) => this.#logger.debug({ event: 'cluster_redis_error', error: error.message }, 'cluster: redis error'));
    this.#renewTimer = setInterval(() => this.#renewAll(), Math.max(100, Math.floor(config.lease / 3)));
    this.#renewTimer.unref();
  }

  /**
   * Connects (ioredis is imported here, on first use). Waits up to 1 s for the first
   * connection; Redis missing at start is not an error: the link stays down, `on_error`
   * decides, and it keeps reconnecting in the background.
   */
  static async open(config: ClusterConfig, logger: Logger, metrics: ClusterMetrics): Promise<RedisLink> {
    const { Redis } = requireCommonJs('ioredis');
    const client = new Redis(config.redis, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      enableAutoPipelining: true,
      connectTimeout: Math.max(FIRST_CONNECT_WAIT_MS, config.timeout),
      retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 10), MAX_RECONNECT_DELAY_MS),
      // A peer that vanished without a FIN (network cut) is noticed by TCP keep-alive, not never.
      keepAlive: 10_000,
      connectionName: 'tcpproxy',
      disableClientInfo: true,
    });
    const link = new RedisLink(client, config, logger, metrics);
    await Promise.race([client.connect().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, FIRST_CONNECT_WAIT_MS).unref())]);
    if (link.#state === undefined) link.#update('no connection at start');
    return link;
  }

  /** Whether this link was opened with `config` (a reload cannot change it: see README). */
  serves(config: ClusterConfig): boolean {
    const running = this.#config;
    return (
      config.redis === running.redis &&
      config.prefix === running.prefix &&
      config.lease === running.lease &&
      config.on_error === running.on_error &&
      config.timeout === running.timeout
    );
  }

  get usable(): boolean {
    return this.#connected && !this.#stalled && !this.#closed;
  }

  get state(): LinkState {
    return this.#state ?? 'down';
  }

  /** The ledger of one listener, kept across reloads (its open connections stay counted). */
  limits(listener: string): ClusterLimits {
    let ledger = this.#ledgers.get(listener);
    if (ledger === undefined) {
      ledger = new ClusterLimits(this, this.#config.prefix, listener);
      this.#ledgers.set(listener, ledger);
      if (this.usable) ledger.resync();
    }
    return ledger;
  }

  status(): ClusterStatus {
    return {
      state: this.state,
      redis: redactRedisUrl(this.#config.redis),
      on_error: this.onError,
      lease_ms: this.leaseMs,
      listeners: [...this.#ledgers.values()].map((l) => ({ name: l.listener, local: l.held, cluster: l.clusterActive })),
    };
  }

  async run(script: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown> {
    const started = performance.now();
    const command = (this.#client as unknown as Record<string, ScriptCommand>)[COMMANDS[script].name]!;
    const reply = await command.call(this.#client, ...keys, ...args);
    this.metrics.roundTrip((performance.now() - started) / 1000);
    this.#answered();
    return reply;
  }

  stalled(): void {
    if (this.#stalled || !this.#connected) return;
    this.#stalled = true;
    this.#update(`no answer within ${this.timeoutMs} ms`);
    this.#probe = setInterval(() => {
      this.#client.ping().then(
        () => this.#answered(),
        () => undefined,
      );
    }, PROBE_INTERVAL_MS);
    this.#probe.unref();
  }

  /** Shutdown: every listener leaves (its part removed now, not at lease end), then QUIT. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#renewTimer);
    clearInterval(this.#probe);
    const leaving = Promise.all([...this.#ledgers.values()].map((ledger) => ledger.leave()));
    await Promise.race([leaving, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    this.#closed = true;
    if (this.#connected) {
      await Promise.race([this.#client.quit().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
    }
    this.#client.disconnect();
  }

  /** Any answer: Redis is not hung. */
  #answered(): void {
    if (!this.#stalled) return;
    this.#unstall();
    this.#update('answering again');
  }

  #unstall(): void {
    this.#stalled = false;
    clearInterval(this.#probe);
    this.#probe = undefined;
  }

  #update(why: string): void {
    if (this.#closed) return;
    const next: LinkState = this.#connected && !this.#stalled ? 'up' : 'down';
    if (next === this.#state) return;
    const first = this.#state === undefined;
    this.#state = next;
    this.metrics.redisUp(next === 'up');
    const redis = redactRedisUrl(this.#config.redis);
    if (next === 'up') {
      this.#logger.info(
        { event: 'cluster_up', redis, reason: why },
        first ? 'cluster: connected to redis' : "cluster: redis reachable again; re-registering this process's connections",
      );
      for (const ledger of this.#ledgers.values()) ledger.resync();
    } else {
      this.#logger.warn(
        { event: 'cluster_down', redis, reason: why, on_error: this.onError },
        `cluster: redis unreachable (${why}); ${this.onError === 'allow' ? 'admitting' : 'refusing'} cluster-scoped connections (on_error: ${this.onError}) until it is back`,
      );
    }
  }

  #renewAll(): void {
    if (!this.usable) return;
    for (const ledger of this.#ledgers.values()) ledger.renew();
  }
}
