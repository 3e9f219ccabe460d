import type { Logger } from 'pino';
import { createBalancer, type Balancer, type BalanceStrategy } from './balancer.js';
import { checkSettings, derivedState, Endpoint, endpointLabel } from './endpoint.js';
import { HealthCheck, type HealthCheckOptions } from './health-check.js';
import { localShortage, shortageWarnings } from './local-shortage.js';
import { isIpLiteral, resolveHost, systemLookup, type Lookup } from './resolver.js';

export type { BalanceStrategy } from './balancer.js';
export type { HealthCheckOptions } from './health-check.js';

/** One configured upstream: `address` as written ("db.internal:5432"), host and port split. */
export interface UpstreamSpec {
  address: string;
  host: string;
  port: number;
  weight: number;
  maxConnections?: number;
}

/** A run-time change to one upstream's settings (admin API); `maxConnections: null` lifts the limit. */
export interface UpstreamSettingsChange {
  weight?: number;
  maxConnections?: number | null;
}

/** Why a run-time upstream change was refused; `code` is stable (the admin API answers with it). */
export class UpstreamChangeError extends Error {
  constructor(
    readonly code: 'unknown_upstream' | 'upstream_exists' | 'last_upstream' | 'unresolvable' | 'invalid_settings' | 'pool_replaced',
    message: string,
  ) {
    super(message);
  }
}

/** reason 'limit': every eligible endpoint is at max_connections; 'no_upstream': none is healthy. */
export type PickResult = { endpoint: Endpoint } | { endpoint: undefined; reason: 'no_upstream' | 'limit' };

export interface UpstreamPoolOptions {
  listener: string;
  upstreams: UpstreamSpec[];
  balance: BalanceStrategy;
  /** Active checks; without them failures are detected passively (reportConnectFailure). */
  healthCheck?: HealthCheckOptions;
  logger: Logger;
  /** How often hostnames are resolved again; default 30 s. */
  resolveIntervalMs?: number;
  /** Passive ejection back-off: baseMs, doubled on each failure in a row, up to maxMs. */
  passiveBackoff?: { baseMs: number; maxMs: number };
  /** The pool this one replaces on reload: endpoints with the same label carry over. */
  previous?: UpstreamPool;
  /** Name resolution; default dns.promises.lookup(host, { all: true }). */
  lookup?: Lookup;
  /** Randomness for the random strategy and the health-check jitter; default Math.random. */
  random?: () => number;
}

const DEFAULT_RESOLVE_INTERVAL_MS = 30_000;
const DEFAULT_BACKOFF = { baseMs: 1_000, maxMs: 60_000 };
// Shared results: a refused pick allocates nothing.
const NO_UPSTREAM: PickResult = Object.freeze({ endpoint: undefined, reason: 'no_upstream' as const });
const LIMIT: PickResult = Object.freeze({ endpoint: undefined, reason: 'limit' as const });

/**
 * The upstreams of one listener: their endpoints (one per resolved address), state,
 * counters, health checking, passive ejection and the balancer that picks among them.
 *
 * Reload: a pool built with `previous` adopts the previous pool's endpoints that keep their
 * label (same objects: state, counters, health, active connections). When its start()
 * resolves, the previous pool is retired: its timers and checks stop, and acquire(),
 * release() and failure reports made on it (by connections that started before the
 * reload) are applied to this pool's bookkeeping. A retired pool must not pick any more.
 */
export class UpstreamPool {
  readonly listener: string;
  /** The configured upstreams, then changed at run time by add/update/removeUpstream. */
  private specs: readonly UpstreamSpec[];
  private readonly balancer: Balancer;
  private readonly healthCheck: HealthCheckOptions | undefined;
  private readonly logger: Logger;
  private readonly resolveIntervalMs: number;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly lookup: Lookup;
  private readonly random: () => number;
  private previous: UpstreamPool | undefined;
  private successor: UpstreamPool | undefined;

  private members: readonly Endpoint[] = [];
  private byLabel = new Map<string, Endpoint>();
  /** Last successful resolution per configured address, kept when a later lookup fails. */
  private readonly resolved = new Map<string, readonly string[]>();
  private readonly drainedUpstreams = new Set<string>();
  private readonly checks = new Map<Endpoint, HealthCheck>();
  private readonly retryTimers = new Map<Endpoint, NodeJS.Timeout>();
  private readonly capacityListeners = new Set<() => void>();
  private readonly reportedDuplicates = new Set<string>();
  /** What the admin API changed since this pool was built from the config (a reload discards it). */
  private readonly runtimeChanges: string[] = [];
  private resolveTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Members in state healthy. */
  private healthy = 0;
  /** Healthy members below their max_connections: 0 answers pick() without the balancer. */
  private available = 0;

  constructor(options: UpstreamPoolOptions) {
    for (const spec of options.upstreams) checkSettings({ ...spec, upstream: spec.address });
    this.listener = options.listener;
    this.specs = options.upstreams.slice();
    this.random = options.random ?? Math.random;
    this.balancer = createBalancer(options.balance, this.random);
    this.healthCheck = options.healthCheck;
    this.logger = options.logger;
    this.resolveIntervalMs = options.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS;
    this.backoff = options.passiveBackoff ?? DEFAULT_BACKOFF;
    this.lookup = options.lookup ?? systemLookup;
    this.previous = options.previous;
  }

  /**
   * Resolves every upstream once (a name that does not resolve is logged and retried on
   * the next round, not fatal), then starts the health checks and the re-resolution timer
   * (timers are unref'ed: they never hold the process). A pool that replaces another adopts
   * its endpoints here but leaves the checks and timers, the settings and the counting to the
   * running pool until takeOver(): a reload that fails after this point changes nothing.
   */
  async start(): Promise<void> {
    await this.resolveAll();
    if (this.closed) return;
    // While the previous pool runs, it alone watches (checks, back-offs, re-resolution),
    // configures and counts the endpoints both share.
    const standalone = this.previous === undefined;
    if (!standalone) this.copyDrained(this.previous!);
    this.applyMembers(this.membersFromResolution(this.previous?.byLabel ?? this.byLabel, { reconfigure: standalone }), { watchAdded: standalone });
    if (standalone) this.scheduleResolveIfNamed();
  }

  /**
   * The reload is committed: the previous pool is retired (its timers and checks stop; its
   * connections' acquire/release/failure reports and its capacity subscribers come here),
   * and the adopted endpoints take this config's weights and limits.
   */
  takeOver(): void {
    const previous = this.previous;
    if (previous === undefined) return;
    this.previous = undefined; // a retired pool need not stay reachable from its successor
    previous.retire(this);
    this.copyDrained(previous); // admin drains made during the reload count
    // Recount too: the previous pool's connections changed the shared endpoints meanwhile.
    const members = this.membersFromResolution(this.byLabel, { reconfigure: true });
    this.applyMembers(members, { watchAdded: false });
    for (const endpoint of members) this.watch(endpoint);
    this.scheduleResolveIfNamed();
  }

  private copyDrained(from: UpstreamPool): void {
    this.drainedUpstreams.clear();
    for (const upstream of from.drainedUpstreams) this.drainedUpstreams.add(upstream);
  }

  /** An endpoint for a new connection from `clientIp`, skipping those in `exclude` (retries). */
  pick(clientIp: string, exclude?: ReadonlySet<Endpoint>): PickResult {
    // Before takeOver, the running pool decides (a moved listener may accept early); after
    // it, a connection that started before the reload and waits or retries picks here.
    const inCharge = this.inCharge();
    if (inCharge !== this) return inCharge.pick(clientIp, exclude);
    if (this.available === 0) return this.healthy > 0 ? LIMIT : NO_UPSTREAM;
    const endpoint = this.balancer.pick(clientIp, exclude);
    if (endpoint !== undefined) return { endpoint };
    // Only the excluded ones had room; say 'limit' if a healthy one is merely full.
    const full = this.members.some(
      (member) => member.state === 'healthy' && member.active >= member.maxConnections && !exclude?.has(member),
    );
    return full ? LIMIT : NO_UPSTREAM;
  }

  /** A connection starts using `endpoint` (call once per connection, before connecting). */
  acquire(endpoint: Endpoint): void {
    const hadRoom = endpoint.active < endpoint.maxConnections;
    endpoint.active++;
    endpoint.total++;
    this.inCharge().loadChanged(endpoint, hadRoom);
  }

  /** The connection holding `endpoint` is gone (call exactly once per acquire). */
  release(endpoint: Endpoint): void {
    if (endpoint.active === 0) {
      this.logger.warn({ event: 'upstream_release_unbalanced', listener: this.listener, upstream: endpoint.label });
      return;
    }
    const hadRoom = endpoint.active < endpoint.maxConnections;
    endpoint.active--;
    const current = this.inCharge();
    current.loadChanged(endpoint, hadRoom);
    current.notifyCapacity();
  }

  /**
   * `listener` runs whenever capacity may have freed: a release, or an endpoint coming
   * back. One set per pool (not one per waiting connection); a reload hands the
   * subscriptions on to the new pool. Returns the unsubscribe.
   */
  onRelease(listener: () => void): () => void {
    this.inCharge().capacityListeners.add(listener);
    return () => {
      this.inCharge().capacityListeners.delete(listener);
    };
  }

  /**
   * A connect to `endpoint` was refused or timed out. Without active health checks the
   * endpoint is ejected for a back-off (base, 2x base, 4x base ... max, by failures in a
   * row); when it runs out the endpoint is eligible again, and the next connect decides:
   * success resets the back-off, failure ejects it for twice as long. With health checks
   * configured, the checks alone decide.
   * A failure that is this host's own (out of descriptors, ports, memory: local-shortage.ts)
   * blames nobody: it is logged (rate-limited) and false is returned, so that the caller
   * does not count it against the endpoint either.
   */
  reportConnectFailure(endpoint: Endpoint, error: Error): boolean {
    const code = (error as NodeJS.ErrnoException).code;
    if (localShortage(code) !== undefined) {
      shortageWarnings.warn(this.logger, code!, { listener: this.listener, upstream: endpoint.label, during: 'connect' }, 'connects fail until some close; the upstream is not blamed');
      return false;
    }
    endpoint.failures++;
    const current = this.inCharge();
    if (!current.isMember(endpoint)) return true; // counted, but no longer balanced on
    // Either way the endpoint gets no new connections: without active checks a back-off
    // timer brings it back; with them, the next passing check does (the contract's rule).
    if (current.healthCheck === undefined) current.eject(endpoint, error);
    else current.markUnreachable(endpoint, error);
    return true;
  }

  reportConnectSuccess(endpoint: Endpoint): void {
    endpoint.ejections = 0;
  }

  /**
   * Admin: no new connections to an upstream (its configured address: all its endpoints,
   * including ones DNS adds later) or to one endpoint (its label). Existing ones continue.
   * Returns false when nothing matches.
   */
  drain(upstreamOrLabel: string): boolean {
    return this.setDrained(upstreamOrLabel, true);
  }

  /** Admin: undoes drain(); the endpoint's health decides its state again. */
  enable(upstreamOrLabel: string): boolean {
    return this.setDrained(upstreamOrLabel, false);
  }

  // -- run-time membership and settings (admin API; HAProxy's add/del server, set weight) --

  /** The upstreams as currently set: the config's, as changed at run time. */
  upstreams(): readonly UpstreamSpec[] {
    return this.specs;
  }

  /** The run-time changes made to this pool since it was built from the config, oldest first. */
  changesSinceConfig(): readonly string[] {
    return this.runtimeChanges;
  }

  /**
   * Adds an upstream: resolved now (a name that does not resolve is refused), then balanced
   * on, health-checked and re-resolved like a configured one. Throws an UpstreamChangeError.
   */
  async addUpstream(spec: UpstreamSpec): Promise<void> {
    this.checkSettingsOf(spec);
    if (this.specFor(spec.address) !== undefined) throw new UpstreamChangeError('upstream_exists', `${spec.address} is already an upstream of listener "${this.listener}"`);
    let addresses: string[];
    try {
      addresses = await resolveHost(spec.host, this.lookup);
    } catch (error) {
      throw new UpstreamChangeError('unresolvable', `cannot resolve ${spec.address}: ${(error as Error).message}`);
    }
    // The pool may have changed while the name resolved: check again.
    if (this.closed) {
      throw new UpstreamChangeError('pool_replaced', `listener "${this.listener}" was reloaded meanwhile: try again`);
    }
    if (this.specFor(spec.address) !== undefined) throw new UpstreamChangeError('upstream_exists', `${spec.address} is already an upstream of listener "${this.listener}"`);
    const taken = addresses.map((host) => endpointLabel(host, spec.port)).find((label) => this.byLabel.has(label));
    if (taken !== undefined) throw new UpstreamChangeError('upstream_exists', `${spec.address} is ${taken}, already an endpoint of listener "${this.listener}"`);
    if (addresses.length === 0) throw new UpstreamChangeError('unresolvable', `${spec.address} resolves to no address`);
    this.specs = [...this.specs, spec];
    this.resolved.set(spec.address, addresses);
    this.applyMembers(this.membersFromResolution(this.byLabel, { reconfigure: true }), { watchAdded: true });
    if (this.resolveTimer === undefined) this.scheduleResolveIfNamed();
    this.runtimeChanges.push(`add ${spec.address} weight ${spec.weight}${spec.maxConnections ? ` max_connections ${spec.maxConnections}` : ''}`);
  }

  /** Changes an upstream's weight and/or max_connections; every balancer follows at once. */
  updateUpstream(address: string, change: UpstreamSettingsChange): UpstreamSpec {
    const current = this.requireSpec(address);
    const { maxConnections: _old, ...rest } = current;
    const maxConnections = change.maxConnections === undefined ? current.maxConnections : (change.maxConnections ?? undefined);
    const next: UpstreamSpec = { ...rest, weight: change.weight ?? current.weight, ...(maxConnections !== undefined && { maxConnections }) };
    this.checkSettingsOf(next);
    this.specs = this.specs.map((spec) => (spec === current ? next : spec));
    this.applyMembers(this.membersFromResolution(this.byLabel, { reconfigure: true }), { watchAdded: false });
    this.runtimeChanges.push(`set ${next.address} weight ${next.weight} max_connections ${next.maxConnections ?? 'unlimited'}`);
    return next;
  }

  /**
   * Removes an upstream from the rotation for good: no new connection goes to its endpoints,
   * those it has finish undisturbed (they release it as usual). The last upstream cannot go.
   * Answers the upstream and the endpoints taken out (their `active`: what is still finishing).
   */
  removeUpstream(address: string): { upstream: UpstreamSpec; endpoints: Endpoint[] } {
    const current = this.requireSpec(address);
    if (this.specs.length === 1) {
      throw new UpstreamChangeError('last_upstream', `${current.address} is the last upstream of listener "${this.listener}": add its replacement first`);
    }
    const before = this.members;
    this.specs = this.specs.filter((spec) => spec !== current);
    this.resolved.delete(current.address);
    this.drainedUpstreams.delete(current.address);
    this.applyMembers(this.membersFromResolution(this.byLabel, { reconfigure: true }), { watchAdded: false });
    this.runtimeChanges.push(`remove ${current.address}`);
    return { upstream: current, endpoints: before.filter((endpoint) => !this.isMember(endpoint)) };
  }

  /** The upstream configured as `address`, or the one with an endpoint labelled so. */
  private specFor(address: string): UpstreamSpec | undefined {
    const upstream = this.byLabel.get(address)?.upstream ?? address;
    return this.specs.find((spec) => spec.address === upstream);
  }

  private requireSpec(address: string): UpstreamSpec {
    const spec = this.specFor(address);
    if (spec === undefined) throw new UpstreamChangeError('unknown_upstream', `unknown upstream "${address}" in listener "${this.listener}"`);
    return spec;
  }

  private checkSettingsOf(spec: UpstreamSpec): void {
    try {
      checkSettings({ ...spec, upstream: spec.address });
    } catch (error) {
      throw new UpstreamChangeError('invalid_settings', (error as Error).message);
    }
  }

  /** The current endpoints, in configuration order. */
  endpoints(): readonly Endpoint[] {
    return this.members;
  }

  healthyCount(): number {
    return this.healthy;
  }

  /** Stops every timer and health-check socket. Endpoints in use may still be released. */
  close(): void {
    this.closed = true;
    clearTimeout(this.resolveTimer);
    this.resolveTimer = undefined;
    for (const endpoint of this.members) this.unwatch(endpoint);
  }

  private retire(successor: UpstreamPool): void {
    this.successor = successor;
    for (const listener of this.capacityListeners) successor.capacityListeners.add(listener);
    this.capacityListeners.clear();
    this.close();
  }

  /**
   * The pool whose bookkeeping counts now: until this one takes over, the running pool it
   * replaces (so that a reload which fails leaves nothing behind); after that, this one or
   * the newest pool that replaced it.
   */
  private inCharge(): UpstreamPool {
    if (this.previous !== undefined) return this.previous.inCharge();
    let newest = this.successor;
    while (newest?.successor !== undefined) newest = newest.successor;
    return newest ?? this;
  }

  private isMember(endpoint: Endpoint): boolean {
    return this.byLabel.get(endpoint.label) === endpoint;
  }

  private loadChanged(endpoint: Endpoint, hadRoom: boolean): void {
    // An endpoint DNS has removed keeps working for its connections but counts no more.
    if (!this.isMember(endpoint)) return;
    const hasRoom = endpoint.active < endpoint.maxConnections;
    if (endpoint.state === 'healthy' && hasRoom !== hadRoom) this.available += hasRoom ? 1 : -1;
    this.balancer.loadChanged(endpoint);
  }

  private notifyCapacity(): void {
    for (const listener of this.capacityListeners) listener();
  }

  private eject(endpoint: Endpoint, error: Error): void {
    // Connects already in flight when it was ejected fail too: one back-off, not several.
    if (!endpoint.reachable) return;
    endpoint.ejections++;
    const delayMs = Math.min(this.backoff.baseMs * 2 ** (endpoint.ejections - 1), this.backoff.maxMs);
    endpoint.reachable = false;
    endpoint.retryAt = Date.now() + delayMs;
    this.refreshState(endpoint, 'connect_failed', `${error.message}; retry in ${delayMs} ms`);
    this.scheduleRetry(endpoint, delayMs);
  }

  private markUnreachable(endpoint: Endpoint, error: Error): void {
    if (!endpoint.reachable) return;
    endpoint.reachable = false;
    this.refreshState(endpoint, 'connect_failed', `${error.message}; until a health check passes`);
  }

  private scheduleRetry(endpoint: Endpoint, delayMs: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(endpoint);
      endpoint.retryAt = 0;
      endpoint.reachable = true;
      this.refreshState(endpoint, 'backoff_expired');
    }, delayMs);
    timer.unref();
    this.retryTimers.set(endpoint, timer);
  }

  /** A health check this host could not run (out of descriptors...): neither a pass nor a failure. */
  private readonly onCheckShortage = (endpoint: Endpoint, code: string): void => {
    shortageWarnings.warn(this.logger, code, { listener: this.listener, upstream: endpoint.label, during: 'health_check' }, 'health check skipped; the upstream keeps its state');
  };

  private readonly onVerdict = (endpoint: Endpoint, reachable: boolean, detail: string): void => {
    endpoint.reachable = reachable;
    this.refreshState(endpoint, reachable ? 'health_check_passed' : 'health_check_failed', detail);
  };

  /** Sets a member's state from its health and drain flags; counts, notifies and logs a change. */
  private refreshState(endpoint: Endpoint, reason: string, detail?: string): void {
    const from = endpoint.state;
    const to = derivedState(endpoint);
    if (from === to) return;
    const hasRoom = endpoint.active < endpoint.maxConnections;
    endpoint.state = to;
    if (from === 'healthy') {
      this.healthy--;
      if (hasRoom) this.available--;
    } else if (to === 'healthy') {
      this.healthy++;
      if (hasRoom) this.available++;
    }
    this.balancer.stateChanged(endpoint);
    this.logger.info(
      { event: 'upstream_state', listener: this.listener, upstream: endpoint.label, from, to, reason, detail },
      `upstream ${endpoint.label} ${from} -> ${to} (${reason})`,
    );
    if (to === 'healthy') this.notifyCapacity();
  }

  private setDrained(upstreamOrLabel: string, drained: boolean): boolean {
    let matched = this.specs.some((spec) => spec.address === upstreamOrLabel);
    if (matched) {
      if (drained) this.drainedUpstreams.add(upstreamOrLabel);
      else this.drainedUpstreams.delete(upstreamOrLabel);
    }
    for (const endpoint of this.members) {
      if (endpoint.label !== upstreamOrLabel && endpoint.upstream !== upstreamOrLabel) continue;
      matched = true;
      endpoint.drained = drained;
      this.refreshState(endpoint, drained ? 'admin_drain' : 'admin_enable');
    }
    return matched;
  }

  /** Resolves every upstream; one whose lookup fails keeps its last known addresses. */
  private async resolveAll(): Promise<boolean> {
    // The upstreams as they were asked about: run-time changes may land during the lookups.
    const specs = this.specs;
    const results = await Promise.all(
      specs.map((spec) =>
        resolveHost(spec.host, this.lookup).catch((error: Error) => {
          this.logger.warn(
            { event: 'upstream_resolve_failed', listener: this.listener, upstream: spec.address, error: error.message },
            `cannot resolve ${spec.address}: ${error.message}`,
          );
          return undefined;
        }),
      ),
    );
    let changed = false;
    specs.forEach((spec, index) => {
      const addresses = results[index];
      if (!this.specs.some((current) => current.address === spec.address)) return; // removed meanwhile
      const known = this.resolved.get(spec.address);
      if (addresses === undefined || (known !== undefined && sameList(known, addresses))) return;
      changed = true;
      this.resolved.set(spec.address, addresses);
      if (!isIpLiteral(spec.host)) {
        this.logger.info(
          { event: 'upstream_resolved', listener: this.listener, upstream: spec.address, addresses },
          `${spec.address} resolves to ${addresses.join(', ') || 'nothing'}`,
        );
      }
    });
    return changed;
  }

  /** Only names need resolving again; addresses never change. */
  private scheduleResolveIfNamed(): void {
    if (this.specs.some((spec) => !isIpLiteral(spec.host))) this.scheduleResolve();
  }

  private scheduleResolve(): void {
    this.resolveTimer = setTimeout(() => void this.reresolve(), this.resolveIntervalMs);
    this.resolveTimer.unref();
  }

  private async reresolve(): Promise<void> {
    const changed = await this.resolveAll();
    if (this.closed) return;
    if (changed) this.applyMembers(this.membersFromResolution(this.byLabel, { reconfigure: true }), { watchAdded: true });
    this.scheduleResolve();
  }

  /**
   * The endpoints the resolution calls for, reusing `known` ones with the same label (given
   * this pool's settings when `reconfigure`: not before a reload is committed).
   */
  private membersFromResolution(known: ReadonlyMap<string, Endpoint>, options: { reconfigure: boolean }): Endpoint[] {
    const members: Endpoint[] = [];
    const labels = new Set<string>();
    for (const spec of this.specs) {
      const settings = { upstream: spec.address, weight: spec.weight, maxConnections: spec.maxConnections };
      for (const host of this.resolved.get(spec.address) ?? []) {
        const label = endpointLabel(host, spec.port);
        if (labels.has(label)) {
          this.reportDuplicate(label, spec.address);
          continue;
        }
        labels.add(label);
        let endpoint = known.get(label);
        if (endpoint !== undefined) {
          if (options.reconfigure) endpoint.reconfigure(settings);
        } else {
          endpoint = new Endpoint(host, spec.port, settings);
          endpoint.drained = this.drainedUpstreams.has(spec.address);
          endpoint.state = derivedState(endpoint);
        }
        members.push(endpoint);
      }
    }
    return members;
  }

  private reportDuplicate(label: string, upstream: string): void {
    if (this.reportedDuplicates.has(label)) return;
    this.reportedDuplicates.add(label);
    this.logger.warn(
      { event: 'upstream_duplicate', listener: this.listener, upstream, endpoint: label },
      `${upstream} resolves to ${label}, already an endpoint of this listener: counted once`,
    );
  }

  private applyMembers(next: Endpoint[], options: { watchAdded: boolean }): void {
    const kept = new Set(next);
    for (const endpoint of this.members) {
      if (!kept.has(endpoint)) this.unwatch(endpoint);
    }
    const added = next.filter((endpoint) => !this.isMember(endpoint));
    this.members = next;
    this.byLabel = new Map(next.map((endpoint) => [endpoint.label, endpoint]));
    this.healthy = 0;
    this.available = 0;
    for (const endpoint of next) {
      if (endpoint.state !== 'healthy') continue;
      this.healthy++;
      if (endpoint.active < endpoint.maxConnections) this.available++;
    }
    this.balancer.setEndpoints(next);
    if (options.watchAdded) for (const endpoint of added) this.watch(endpoint);
    // New members or higher limits may be room for connections waiting on a full pool.
    if (this.available > 0) this.notifyCapacity();
  }

  /** Starts what decides a new member's health: its checks, or its pending back-off. */
  private watch(endpoint: Endpoint): void {
    this.unwatch(endpoint); // never two checks or back-off timers for one endpoint
    if (this.healthCheck !== undefined) {
      endpoint.retryAt = 0;
      const check = new HealthCheck(endpoint, this.healthCheck, this.onVerdict, this.random, this.onCheckShortage);
      this.checks.set(endpoint, check);
      check.start();
    } else if (!endpoint.reachable) {
      // Down when adopted on reload: resume its back-off (or give it one, if checks had it down).
      const remaining = endpoint.retryAt > 0 ? endpoint.retryAt - Date.now() : this.backoff.baseMs;
      this.scheduleRetry(endpoint, Math.max(0, remaining));
    }
  }

  private unwatch(endpoint: Endpoint): void {
    this.checks.get(endpoint)?.stop();
    this.checks.delete(endpoint);
    clearTimeout(this.retryTimers.get(endpoint));
    this.retryTimers.delete(endpoint);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}
