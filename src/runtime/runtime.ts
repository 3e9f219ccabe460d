/**
 * The runtime: owns the listeners of the running config snapshot, the admin endpoint and
 * the metrics; swaps snapshots on reload and drains on shutdown. It is what the admin API
 * talks to (AdminRuntime).
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type {
  AdminRuntime,
  RuntimeControl,
  ConnectionInfo,
  ReloadResult,
  StatsSnapshot,
  UpstreamAction,
  UpstreamActionResult,
  UpstreamChange,
  UpstreamChangeResult,
  UpstreamView,
} from '../admin/admin-runtime.js';
import type { AdminServer } from '../admin/server.js';
import type { RedisLink } from '../cluster/redis-link.js';
import type { ToxiproxyApi } from '../toxiproxy/api.js';
import { ConfigError, formatKeyPath, type ConfigSnapshot, type ListenerConfig } from '../config/load.js';
import { listenerSchema } from '../config/schema.js';
import type { LiveFilters } from '../pipeline/live.js';
import { selectAccessFields } from '../observability/access-log.js';
import { ProxyMetrics } from '../observability/metrics.js';
import type { Bridge } from '../proxy/bridge.js';
import { burstCollector } from '../proxy/burst-collector.js';
import { Listener } from '../proxy/listener.js';
import type { ListenerContext } from '../proxy/listener-context.js';
import { ConnectionIds } from '../proxy/connection-ids.js';
import { ListenerState } from '../proxy/listener-state.js';
import { buildListenerPlan, retirePlan } from './build-context.js';
import { applyUpstreamChange, upstreamViews } from './upstream-changes.js';
import { VERSION } from '../observability/version.js';

interface RunningListener {
  listener: Listener;
  state: ListenerState;
  /** Created at run time (addListener), not by the config: a reload keeps it. */
  runtime?: boolean;
}

/** A listener's part of a reload, built before anything changes. */
interface Staged {
  readonly name: string;
  readonly state: ListenerState;
  /** The plan to swap in (already in force when the listener is new). */
  readonly context: ListenerContext;
  readonly listener: Listener;
  /** A listener bound for this reload (new, or moved to another address). */
  readonly bound: boolean;
}

export class ProxyRuntime implements AdminRuntime {
  readonly proxyMetrics = new ProxyMetrics({ collectDefault: true });
  private readonly connectionIds: ConnectionIds;
  private adminBound: { address: string; port: number } | undefined;
  private readonly running = new Map<string, RunningListener>();
  private admin: AdminServer | undefined;
  private readonly startedAt = Date.now();
  private reloading: Promise<ReloadResult> | undefined;
  /** A reload asked for while one was running: it runs right after. */
  private nextReload: Promise<ReloadResult> | undefined;
  private stopping = false;
  /** What POST /api/stop does: set by whoever owns the process's signals (cli/main.ts). */
  stopHandler: (() => void) | undefined;
  /** The Redis link of `limits_scope: cluster`, opened when a config first needs it. */
  private cluster: RedisLink | undefined;

  constructor(
    private snapshot: ConfigSnapshot,
    private readonly logger: Logger,
    /** Where SIGHUP and POST /api/reload read the next snapshot from (the config file). */
    private readonly reloadSource: (() => Promise<ConfigSnapshot>) | undefined = undefined,
    /**
     * `now`: the wall clock access schedules read (epoch ms); tests inject one.
     * `connectionIdPrefix`: what makes this process's connection ids unique among workers.
     */
    private readonly options: { readonly now?: () => number; readonly connectionIdPrefix?: string } = {},
  ) {
    this.connectionIds = new ConnectionIds(options.connectionIdPrefix);
    burstCollector.reportTo(logger);
    selectAccessFields(snapshot.log.access_fields);
    this.proxyMetrics.setSources({
      listeners: () => [...this.running.keys()],
      queueLength: (name) => {
        const state = this.running.get(name)?.state;
        return state ? queuedConnections(state) : 0;
      },
      upstreams: () =>
        [...this.running.values()].flatMap(({ state }) =>
          state.context.pool.endpoints().map((endpoint) => ({
            listener: state.name,
            upstream: endpoint.label,
            state: endpoint.state,
            active: endpoint.active,
          })),
        ),
      liveBytes: () =>
        [...this.running.values()].map(({ state }) => {
          let fromClient = 0;
          let toClient = 0;
          for (const bridge of state.connections) {
            // Only bridged connections: their bytes are counted again by closed().
            if (bridge.upstreamLabel === null) continue;
            fromClient += bridge.bytesFromClient;
            toClient += bridge.bytesToClient;
          }
          return { listener: state.name, fromClient, toClient };
        }),
    });
  }

  get config(): ConfigSnapshot {
    return this.snapshot;
  }

  /**
   * Binds every listener, then the admin endpoint; a bind failure rejects with a ListenError.
   * The listeners are announced only once every bind has succeeded, so that a failed start
   * never logs `listening` for a port it is about to give up (#12).
   */
  async start(): Promise<void> {
    await this.openCluster(this.snapshot);
    const bound: [string, AddressInfo][] = [];
    for (const config of this.snapshot.listeners) {
      const state = new ListenerState(config.name, this.connectionIds);
      state.apply(await buildListenerPlan(config, state, this.buildOptions(this.snapshot)));
      const listener = new Listener(state);
      this.running.set(config.name, { listener, state });
      bound.push([config.name, await listener.listen(config.listen)]);
    }
    if (this.snapshot.admin) {
      // The admin server, the toxiproxy API and the cluster link are loaded when configured:
      // a proxy without them does not hold their code (docs/architecture.md, "The cost of a
      // connection, and its memory").
      const { AdminServer } = await import('../admin/server.js');
      const toxiproxy = this.snapshot.admin.toxiproxy_api ? await this.toxiproxyApi() : undefined;
      this.admin = new AdminServer({ listen: this.snapshot.admin.listen, token: this.snapshot.admin.token, runtime: this, logger: this.logger, toxiproxy });
      this.adminBound = await this.admin.start();
    }
    for (const [name, address] of bound) this.logListening(name, address);
  }

  private async toxiproxyApi(): Promise<ToxiproxyApi> {
    const [{ ToxiproxyApi: Api }, { ToxiproxyCollection }] = await Promise.all([import('../toxiproxy/api.js'), import('../toxiproxy/proxies.js')]);
    return new Api(new ToxiproxyCollection(this, this.logger), this.logger);
  }

  private logListening(name: string, bound: { address: string; port: number }): void {
    this.logger.info({ event: 'listening', listener: name, address: bound.address, port: bound.port }, `listener "${name}" on ${bound.address}:${bound.port}`);
  }

  listenerAddress(name: string): { address: string; port: number } | undefined {
    return this.running.get(name)?.listener.address();
  }

  adminAddress(): { address: string; port: number } | undefined {
    return this.adminBound;
  }

  /**
   * Reload: validate the new config (from the file, unless given), build new contexts,
   * bind new or moved listeners, then swap. Any failure keeps the running config intact.
   */
  reload(next?: ConfigSnapshot): Promise<ReloadResult> {
    if (this.reloading === undefined) return this.startReload(next);
    // One is running, and the file (or the snapshot asked for) may be newer than what it read:
    // run once more after it. Requests arriving meanwhile share that one run.
    this.nextReload ??= this.reloading.then(() => {
      this.nextReload = undefined;
      return this.startReload(next);
    });
    return this.nextReload;
  }

  private startReload(next: ConfigSnapshot | undefined): Promise<ReloadResult> {
    this.reloading = this.doReload(next).finally(() => {
      this.reloading = undefined;
    });
    return this.reloading;
  }

  private async doReload(next: ConfigSnapshot | undefined): Promise<ReloadResult> {
    if (this.stopping) return { ok: false, error: 'shutting down' };
    let snapshot: ConfigSnapshot;
    try {
      if (next) snapshot = next;
      else if (this.reloadSource) snapshot = await this.reloadSource();
      else return this.reloadFailed('nothing to reload: the proxy was started without --config');
    } catch (error) {
      return this.reloadFailed(error instanceof ConfigError ? error.problems.join('; ') : (error as Error).message);
    }
    // Build: a plan for every listener, and the sockets of new or moved ones. Running
    // listeners are not touched (a new listener's fresh state takes its plan at once: nothing
    // runs on it yet), so any failure here leaves the running config fully in force.
    const staged: Staged[] = [];
    try {
      await this.openCluster(snapshot);
      for (const config of snapshot.listeners) {
        const current = this.running.get(config.name);
        const state = current?.state ?? new ListenerState(config.name, this.connectionIds);
        const context = await buildListenerPlan(config, state, this.buildOptions(snapshot));
        if (!current) state.apply(context);
        const moved = !current || !sameAddress(current.state.context.config, config);
        const listener = moved ? new Listener(state) : current.listener;
        staged.push({ name: config.name, state, context, listener, bound: moved });
        if (moved) this.logListening(config.name, await listener.listen(config.listen));
      }
    } catch (error) {
      for (const entry of staged) {
        if (entry.bound) entry.listener.close();
        if (!this.running.has(entry.name)) entry.state.close();
        await retirePlan(entry.context);
      }
      return this.reloadFailed((error as Error).message);
    }
    // Swap: one pointer per listener; from here on new connections follow the new snapshot.
    const previous = new Map(this.running);
    this.running.clear();
    const replaced: ListenerContext[] = [];
    for (const entry of staged) {
      const old = previous.get(entry.name);
      if (old) {
        this.warnDiscardedChanges(entry.name, old.state);
        replaced.push(old.state.context);
        entry.state.apply(entry.context);
        if (old.listener !== entry.listener) old.listener.close();
      }
      this.running.set(entry.name, { listener: entry.listener, state: entry.state });
    }
    for (const [name, old] of previous) {
      if (this.running.has(name)) continue;
      // Created at run time and not (now) in the config: kept as it is.
      if (old.runtime) {
        this.running.set(name, old);
        continue;
      }
      // Gone from the config: its connections and queued clients finish as they are.
      old.listener.close();
      old.state.retire();
      replaced.push(old.state.context);
    }
    for (const context of replaced) await retirePlan(context);
    const previousAdmin = this.snapshot.admin?.listen;
    this.snapshot = snapshot;
    this.logger.level = snapshot.log.level;
    selectAccessFields(snapshot.log.access_fields);
    if (snapshot.admin && previousAdmin && (snapshot.admin.listen.host !== previousAdmin.host || snapshot.admin.listen.port !== previousAdmin.port)) {
      this.logger.warn({ event: 'reload' }, 'admin.listen changed: restart the proxy to move the admin endpoint');
    }
    this.logger.info({ event: 'reload', ok: true, listeners: [...this.running.keys()] }, 'configuration reloaded');
    return { ok: true };
  }

  /** A reload rebuilds every pool from the file: say loudly what run-time upstream changes that undoes. */
  private warnDiscardedChanges(name: string, state: ListenerState): void {
    const discarded = state.context.pool.changesSinceConfig();
    if (discarded.length === 0) return;
    this.logger.warn(
      { event: 'reload', listener: name, discarded_upstream_changes: discarded },
      `reload: the config file wins: run-time upstream changes to listener "${name}" discarded (${discarded.join('; ')})`,
    );
  }

  private reloadFailed(error: string): ReloadResult {
    this.logger.error({ event: 'reload', ok: false, error }, 'reload failed; keeping the running configuration');
    return { ok: false, error };
  }

  // -- listeners created and removed at run time ---------------------------------------

  /**
   * A listener from a config entry (the `listeners[]` schema), bound and serving at once.
   * Rejects with a ConfigError (bad entry, name in use) or a ListenError (cannot bind).
   */
  async addListener(raw: unknown, options: { live?: LiveFilters } = {}): Promise<{ address: string; port: number }> {
    if (this.stopping) throw new ConfigError(['shutting down']);
    const parsed = listenerSchema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(parsed.error.issues.map((issue) => `${formatKeyPath(issue.path)}: ${issue.message}`));
    const name = parsed.data.name;
    if (name === undefined) throw new ConfigError(['name: required']);
    if (this.running.has(name)) throw new ConfigError([`name: listener "${name}" exists already`]);
    const config: ListenerConfig = { ...parsed.data, name, index: -1 };
    const state = new ListenerState(name, this.connectionIds, options.live);
    const context = await buildListenerPlan(config, state, this.buildOptions(this.snapshot));
    state.apply(context);
    const listener = new Listener(state);
    const discard = async (): Promise<void> => {
      state.close();
      await retirePlan(context);
    };
    let bound;
    try {
      bound = await listener.listen(config.listen);
    } catch (error) {
      await discard();
      throw error;
    }
    if (this.running.has(name)) {
      // Added twice at once: the first one to bind keeps the name.
      listener.close();
      await discard();
      throw new ConfigError([`name: listener "${name}" exists already`]);
    }
    this.running.set(name, { listener, state, runtime: true });
    this.logger.info({ event: 'listener_added', listener: name, address: bound.address, port: bound.port }, `listener "${name}" added at run time`);
    return { address: bound.address, port: bound.port };
  }

  /** Stops accepting and closes the listener's connections (reason `admin`); false if unknown. */
  async removeListener(name: string): Promise<boolean> {
    const running = this.running.get(name);
    if (!running) return false;
    this.running.delete(name);
    running.listener.close();
    running.state.close();
    for (const bridge of [...running.state.connections]) bridge.close('admin');
    await retirePlan(running.state.context);
    this.logger.info({ event: 'listener_removed', listener: name }, `listener "${name}" removed at run time`);
    return true;
  }

  hasListener(name: string): boolean {
    return this.running.has(name);
  }

  /** The admin API's run-time control of listeners and live filters. */
  readonly control: RuntimeControl = {
    listeners: () =>
      [...this.running.entries()].map(([name, { listener, state, runtime }]) => {
        const bound = listener.address();
        return { name, address: bound.address, port: bound.port, runtime: runtime === true, live_filters: state.live.list().map((f) => f.spec) };
      }),
    addListener: (raw) => this.addListener(raw),
    removeListener: async (name) => {
      const running = this.running.get(name);
      if (!running) return 'unknown';
      if (!running.runtime) return 'configured';
      await this.removeListener(name);
      return 'ok';
    },
    liveFilters: (name) => this.liveFilters(name),
    listenerOf: (id) => {
      for (const bridge of this.allBridges()) if (bridge.id === id) return bridge.listenerName;
      return undefined;
    },
    baseDir: () => this.snapshot.baseDir,
  };

  /** A running listener's live filters (toxics, filters added through the admin API). */
  liveFilters(name: string): LiveFilters | undefined {
    return this.running.get(name)?.state.live;
  }

  /**
   * Graceful shutdown: stop accepting, let connections finish for up to `timeoutMs`,
   * then close the rest with reason `shutdown`.
   */
  async shutdown(timeoutMs = this.snapshot.shutdown_timeout): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // A reload in flight would swap in listeners after these are closed: let it finish first
    // (one queued after it sees `stopping` and does nothing).
    await (this.nextReload ?? this.reloading)?.catch(() => undefined);
    const listeners = [...this.running.values()];
    for (const { listener } of listeners) listener.close();
    for (const { state } of listeners) state.close();
    this.logger.info({ event: 'shutdown', active: this.activeCount(), timeout_ms: timeoutMs }, 'stopped accepting; draining connections');
    await this.waitForDrain(timeoutMs);
    for (const bridge of this.allBridges()) bridge.close('shutdown');
    await this.waitForDrain(5_000);
    for (const { state } of listeners) await retirePlan(state.context);
    await this.cluster?.close();
    await this.admin?.close();
  }

  /**
   * The Redis link, opened the first time a config has a listener with `limits_scope: cluster`
   * (so that ioredis is loaded only then). It is fixed for the life of the process: a reload
   * that changes the `cluster` block keeps the running one and says so.
   */
  private async openCluster(snapshot: ConfigSnapshot): Promise<void> {
    const config = snapshot.cluster;
    if (config === undefined || !snapshot.listeners.some((l) => l.limits_scope === 'cluster')) return;
    if (this.cluster === undefined) {
      const { RedisLink } = await import('../cluster/redis-link.js');
      this.cluster = await RedisLink.open(config, this.logger, this.proxyMetrics.clusterMetrics());
    } else if (!this.cluster.serves(config)) {
      this.logger.warn({ event: 'reload' }, 'cluster settings changed: restart the proxy to apply them (the running ones stay)');
    }
  }

  /** Redis is needed for admission: a cluster-scoped listener refuses everything while it is down. */
  private clusterBlocksAdmission(): boolean {
    const cluster = this.cluster;
    if (cluster?.onError !== 'deny' || cluster.state === 'up') return false;
    return [...this.running.values()].some(({ state }) => state.context.shared !== undefined);
  }

  private waitForDrain(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + timeoutMs;
      const poll = (): void => {
        if (this.activeCount() === 0 || Date.now() >= deadline) return resolve();
        setTimeout(poll, Math.min(50, Math.max(1, deadline - Date.now())));
      };
      poll();
    });
  }

  private activeCount(): number {
    let count = 0;
    for (const { state } of this.running.values()) count += state.connections.size;
    return count;
  }

  private *allBridges(): Iterable<Bridge> {
    for (const { state } of this.running.values()) yield* [...state.connections];
  }

  private buildOptions(snapshot: ConfigSnapshot) {
    return { snapshot, logger: this.logger, metrics: this.proxyMetrics, cluster: this.cluster, now: this.options.now };
  }

  // -- AdminRuntime --------------------------------------------------------------------

  stats(): StatsSnapshot {
    return {
      ...this.proxyMetrics.snapshot(),
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      version: VERSION,
      pid: process.pid,
      listening: [...this.running].map(([name, { listener }]) => {
        const bound = listener.address() as AddressInfo | null; // null once closed (while stopping)
        return { name, address: bound?.address ?? '', port: bound?.port ?? 0 };
      }),
      ...(this.cluster && { cluster: this.cluster.status() }),
      run_time_control: true,
    };
  }

  requestStop(): void {
    this.stopHandler?.();
  }

  connections(): ConnectionInfo[] {
    const now = Date.now();
    return [...this.allBridges()].map((bridge) => ({
      id: bridge.id,
      listener: bridge.listenerName,
      client: bridge.clientLabel,
      upstream: bridge.upstreamLabel,
      age_ms: now - bridge.startedAt,
      bytes_from_client: bridge.bytesFromClient,
      bytes_to_client: bridge.bytesToClient,
    }));
  }

  closeConnection(id: string): boolean {
    for (const bridge of this.allBridges()) {
      if (bridge.id === id) {
        bridge.close('admin');
        return true;
      }
    }
    return false;
  }

  upstreamAction(listener: string, address: string, action: UpstreamAction): UpstreamActionResult {
    const running = this.running.get(listener);
    if (!running) return 'unknown_listener';
    const pool = running.state.context.pool;
    return (action === 'drain' ? pool.drain(address) : pool.enable(address)) ? 'ok' : 'unknown_upstream';
  }

  listUpstreams(listener: string): UpstreamView[] | undefined {
    const running = this.running.get(listener);
    return running && upstreamViews(running.state.context.pool);
  }

  async changeUpstream(listener: string, change: UpstreamChange): Promise<UpstreamChangeResult> {
    // A reload in flight would rebuild the pool from the file: change the one it puts in place.
    await (this.nextReload ?? this.reloading)?.catch(() => undefined);
    const running = this.running.get(listener);
    if (!running) return { ok: false, code: 'unknown_listener', error: `unknown listener "${listener}"` };
    return applyUpstreamChange(running.state.context.pool, change);
  }

  ready(): boolean {
    if (this.stopping || this.running.size === 0 || this.clusterBlocksAdmission()) return false;
    return [...this.running.values()].every(({ state }) => state.context.pool.healthyCount() > 0);
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.proxyMetrics.contentType, body: await this.proxyMetrics.text() };
  }
}

function sameAddress(a: ListenerConfig, b: ListenerConfig): boolean {
  return a.listen.host === b.listen.host && a.listen.port === b.listen.port;
}

/** Clients waiting for a slot: over a listener/per-IP limit, or for a full upstream. */
function queuedConnections(state: ListenerState): number {
  let count = state.waiting.length;
  for (const { queue } of state.pools.values()) count += queue.length;
  return count;
}
