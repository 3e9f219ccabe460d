/**
 * The pool proper: the endpoints of one listener (or SNI route) as the balancer sees them.
 * It picks, counts (acquire/release), keeps the "room for one more" tally that answers a
 * refused pick without the balancer, and signals capacity to the upstream queue. Which
 * endpoints exist is membership.ts's; whether they are reachable, endpoint-health.ts's.
 *
 * The pool lives as long as its listener (state); what the config says about it comes in
 * plans, one per config snapshot: prepare() builds one (lookups, settings checked, a fresh
 * balancer) without touching the pool, apply() swaps it in, synchronously and without
 * failing. A plan that is never applied changes nothing.
 */
import type { Logger } from 'pino';
import type { Balancer, BalanceStrategy } from './balancer.js';
import { createBalancer } from './create-balancer.js';
import { EndpointHealth } from './endpoint-health.js';
import { checkSettings, derivedState, type Endpoint } from './endpoint.js';
import { formatHostPort } from '../net/address.js';
import { TcpProxyError } from '../errors/errors.js';
import type { HealthCheckOptions } from './health-check.js';
import { localShortage, shortageWarnings } from './local-shortage.js';
import { Membership, type MemberChange, type Resolution, type UpstreamSpec } from './membership.js';
import { resolveHost, systemLookup, type Lookup } from './resolver.js';

export type { BalanceStrategy } from './balancer.js';
export type { HealthCheckOptions } from './health-check.js';
export type { UpstreamSpec } from './membership.js';

/** A run-time change to one upstream's settings (admin API); `maxConnections: null` lifts the limit. */
export interface UpstreamSettingsChange {
  weight?: number;
  maxConnections?: number | null;
}

/** Why a run-time upstream change was refused; `code` is stable (the admin API answers with it). */
export class UpstreamChangeError extends TcpProxyError {
  constructor(
    override readonly code: 'unknown_upstream' | 'upstream_exists' | 'last_upstream' | 'unresolvable' | 'invalid_settings' | 'pool_replaced',
    message: string,
  ) {
    super(code, message);
  }
}

/** reason 'limit': every eligible endpoint is at max_connections; 'no_upstream': none is healthy. */
export type PickResult = { endpoint: Endpoint } | { endpoint: undefined; reason: 'no_upstream' | 'limit' };

/** What the config says about a pool. */
export interface PoolSettings {
  upstreams: readonly UpstreamSpec[];
  balance: BalanceStrategy;
  /** Active checks; without them failures are detected passively (reportConnectFailure). */
  healthCheck?: HealthCheckOptions | undefined;
}

/** One snapshot's settings for a pool, ready to apply: checked, resolved, with its own balancer. */
export interface PoolPlan {
  readonly upstreams: readonly UpstreamSpec[];
  readonly resolution: Resolution;
  /** Empty until the plan is applied; a plan is applied once. */
  readonly balancer: Balancer;
  readonly healthCheck: HealthCheckOptions | undefined;
}

export interface UpstreamPoolOptions {
  listener: string;
  logger: Logger;
  /** How often hostnames are resolved again; default 30 s. */
  resolveIntervalMs?: number;
  /** Passive ejection back-off: baseMs, doubled on each failure in a row, up to maxMs. */
  passiveBackoff?: { baseMs: number; maxMs: number };
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

export class UpstreamPool {
  readonly listener: string;
  private readonly logger: Logger;
  private readonly lookup: Lookup;
  private readonly random: () => number;
  private readonly membership: Membership;
  private readonly health: EndpointHealth;
  /** The applied plan's; until the first plan there are no members, so it is never asked. */
  private balancer: Balancer;
  private readonly capacityListeners = new Set<() => void>();
  /** What the admin API changed since the last plan (the next one discards it). */
  private runtimeChanges: string[] = [];
  /** Plans applied so far: a run-time change that straddles a reload is refused. */
  private generation = 0;
  private closed = false;
  /** Members in state healthy. */
  private healthy = 0;
  /** Healthy members below their max_connections: 0 answers pick() without the balancer. */
  private available = 0;

  constructor(options: UpstreamPoolOptions) {
    this.listener = options.listener;
    this.logger = options.logger;
    this.lookup = options.lookup ?? systemLookup;
    this.random = options.random ?? Math.random;
    this.balancer = createBalancer('round_robin');
    this.membership = new Membership({
      listener: options.listener,
      logger: options.logger,
      lookup: this.lookup,
      resolveIntervalMs: options.resolveIntervalMs ?? DEFAULT_RESOLVE_INTERVAL_MS,
      onResolved: () => this.membersChanged(this.membership.update(this.membership.specs), false),
    });
    this.health = new EndpointHealth({
      listener: options.listener,
      logger: options.logger,
      backoff: options.passiveBackoff ?? DEFAULT_BACKOFF,
      random: this.random,
      changed: (endpoint, reason, detail) => this.refreshState(endpoint, reason, detail),
    });
  }

  /**
   * A plan for `settings`: every upstream's settings checked (a RangeError names a bad one),
   * every name looked up (one that does not resolve is logged, not fatal: it keeps its last
   * addresses, or has none until the next round). The pool is not touched.
   */
  async prepare(settings: PoolSettings): Promise<PoolPlan> {
    for (const spec of settings.upstreams) checkSettings({ ...spec, upstream: spec.address });
    const upstreams = settings.upstreams.slice();
    return Object.freeze({
      upstreams,
      resolution: await this.membership.resolve(upstreams),
      balancer: createBalancer(settings.balance, this.random),
      healthCheck: settings.healthCheck,
    });
  }

  /**
   * Swaps a plan in: the config's upstreams (run-time changes are discarded), their settings
   * on the endpoints kept, the plan's balancer and checks. Endpoints keep their state,
   * counters, back-off and, when the checks are unchanged, their running checks.
   */
  apply(plan: PoolPlan): void {
    this.generation++;
    this.runtimeChanges = [];
    this.balancer = plan.balancer;
    const rewatch = this.health.configure(plan.healthCheck);
    this.membersChanged(this.membership.update(plan.upstreams, plan.resolution), rewatch);
  }

  /** An endpoint for a new connection from `clientIp`, skipping those in `exclude` (retries). */
  pick(clientIp: string, exclude?: ReadonlySet<Endpoint>): PickResult {
    if (this.available === 0) return this.healthy > 0 ? LIMIT : NO_UPSTREAM;
    const endpoint = this.balancer.pick(clientIp, exclude);
    if (endpoint !== undefined) return { endpoint };
    // Only the excluded ones had room; say 'limit' if a healthy one is merely full.
    const full = this.membership.members.some((member) => member.state === 'healthy' && member.active >= member.maxConnections && !exclude?.has(member));
    return full ? LIMIT : NO_UPSTREAM;
  }

  /** A connection starts using `endpoint` (call once per connection, before connecting). */
  acquire(endpoint: Endpoint): void {
    const hadRoom = endpoint.active < endpoint.maxConnections;
    endpoint.active++;
    endpoint.total++;
    this.loadChanged(endpoint, hadRoom);
  }

  /** The connection holding `endpoint` is gone (call exactly once per acquire). */
  release(endpoint: Endpoint): void {
    if (endpoint.active === 0) {
      this.logger.warn({ event: 'upstream_release_unbalanced', listener: this.listener, upstream: endpoint.label });
      return;
    }
    const hadRoom = endpoint.active < endpoint.maxConnections;
    endpoint.active--;
    this.loadChanged(endpoint, hadRoom);
    this.notifyCapacity();
  }

  /**
   * `listener` runs whenever capacity may have freed: a release, or an endpoint coming
   * back. One set per pool (not one per waiting connection). Returns the unsubscribe.
   */
  onRelease(listener: () => void): () => void {
    this.capacityListeners.add(listener);
    return () => void this.capacityListeners.delete(listener);
  }

  /**
   * A connect to `endpoint` was refused or timed out: it gets no new connections until a
   * back-off runs out or a health check passes (endpoint-health.ts).
   * A failure that is this host's own (out of descriptors, ports, memory: local-shortage.ts)
   * blames nobody: it is logged (rate-limited) and false is returned, so that the caller
   * does not count it against the endpoint either.
   */
  reportConnectFailure(endpoint: Endpoint, error: Error): boolean {
    const code = (error as NodeJS.ErrnoException).code;
    if (localShortage(code) !== undefined) {
      shortageWarnings.warn(
        this.logger,
        code!,
        { listener: this.listener, upstream: endpoint.label, during: 'connect' },
        'connects fail until some close; the upstream is not blamed',
      );
      return false;
    }
    endpoint.failures++;
    // Counted, but an endpoint no longer in the pool is not balanced on nor watched.
    if (this.membership.isMember(endpoint)) this.health.connectFailed(endpoint, error);
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

  /** The upstreams as currently set: the plan's, as changed at run time. */
  upstreams(): readonly UpstreamSpec[] {
    return this.membership.specs;
  }

  /** The run-time changes made to this pool since its last plan, oldest first. */
  changesSinceConfig(): readonly string[] {
    return this.runtimeChanges;
  }

  /**
   * Adds an upstream: resolved now (a name that does not resolve is refused), then balanced
   * on, health-checked and re-resolved like a configured one. Throws an UpstreamChangeError.
   */
  async addUpstream(spec: UpstreamSpec): Promise<void> {
    this.checkSettingsOf(spec);
    this.refuseExisting(spec);
    const generation = this.generation;
    let addresses: string[];
    try {
      addresses = await resolveHost(spec.host, this.lookup);
    } catch (error) {
      throw new UpstreamChangeError('unresolvable', `cannot resolve ${spec.address}: ${(error as Error).message}`);
    }
    // A reload (or the listener's removal) may have come while the name resolved.
    if (this.closed || generation !== this.generation) {
      throw new UpstreamChangeError('pool_replaced', `listener "${this.listener}" was reloaded meanwhile: try again`);
    }
    this.refuseExisting(spec);
    const taken = addresses.map((host) => formatHostPort(host, spec.port)).find((label) => this.membership.get(label) !== undefined);
    if (taken !== undefined)
      throw new UpstreamChangeError('upstream_exists', `${spec.address} is ${taken}, already an endpoint of listener "${this.listener}"`);
    if (addresses.length === 0) throw new UpstreamChangeError('unresolvable', `${spec.address} resolves to no address`);
    this.membersChanged(this.membership.update([...this.membership.specs, spec], new Map([[spec.address, addresses]])), false);
    this.runtimeChanges.push(`add ${spec.address} weight ${spec.weight}${spec.maxConnections ? ` max_connections ${spec.maxConnections}` : ''}`);
  }

  /** Changes an upstream's weight and/or max_connections; every balancer follows at once. */
  updateUpstream(address: string, change: UpstreamSettingsChange): UpstreamSpec {
    const current = this.requireSpec(address);
    const { maxConnections: _old, ...rest } = current;
    const maxConnections = change.maxConnections === undefined ? current.maxConnections : (change.maxConnections ?? undefined);
    const next: UpstreamSpec = { ...rest, weight: change.weight ?? current.weight, ...(maxConnections !== undefined && { maxConnections }) };
    this.checkSettingsOf(next);
    this.membersChanged(this.membership.update(this.membership.specs.map((spec) => (spec === current ? next : spec))), false);
    this.runtimeChanges.push(`set ${next.address} weight ${next.weight} max_connections ${next.maxConnections ?? 'unlimited'}`);
    return next;
  }

  /**
   * Removes an upstream from the rotation for good: no new connection goes to its endpoints,
   * those it has finish undisturbed (they release it as usual). The last upstream cannot go.
   * Answers the upstream and the endpoints taken out (their `active`: what is still finishing).
   */
  removeUpstream(address: string): { upstream: UpstreamSpec; endpoints: readonly Endpoint[] } {
    const current = this.requireSpec(address);
    if (this.membership.specs.length === 1) {
      throw new UpstreamChangeError('last_upstream', `${current.address} is the last upstream of listener "${this.listener}": add its replacement first`);
    }
    const change = this.membership.update(this.membership.specs.filter((spec) => spec !== current));
    this.membersChanged(change, false);
    this.runtimeChanges.push(`remove ${current.address}`);
    return { upstream: current, endpoints: change.removed };
  }

  private refuseExisting(spec: UpstreamSpec): void {
    if (this.specFor(spec.address) !== undefined)
      throw new UpstreamChangeError('upstream_exists', `${spec.address} is already an upstream of listener "${this.listener}"`);
  }

  /** The upstream configured as `address`, or the one with an endpoint labelled so. */
  private specFor(address: string): UpstreamSpec | undefined {
    const upstream = this.membership.get(address)?.upstream ?? address;
    return this.membership.specs.find((spec) => spec.address === upstream);
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
    return this.membership.members;
  }

  healthyCount(): number {
    return this.healthy;
  }

  /**
   * No plan uses this pool any more (its route or listener is gone, or shutdown): every
   * timer and health-check socket stops. Its connections still release their endpoints,
   * and capacity they free still reaches its queue's waiters.
   */
  close(): void {
    this.closed = true;
    this.membership.close();
    this.health.close();
  }

  private loadChanged(endpoint: Endpoint, hadRoom: boolean): void {
    if (!this.membership.isMember(endpoint)) {
      // It left the pool (DNS, a reload, the admin API) and keeps working for its connections.
      if (endpoint.active === 0) this.membership.forget(endpoint);
      return;
    }
    const hasRoom = endpoint.active < endpoint.maxConnections;
    if (endpoint.state === 'healthy' && hasRoom !== hadRoom) this.available += hasRoom ? 1 : -1;
    this.balancer.loadChanged(endpoint);
  }

  private notifyCapacity(): void {
    for (const listener of this.capacityListeners) listener();
  }

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
    const { drainedUpstreams, members, specs } = this.membership;
    let matched = specs.some((spec) => spec.address === upstreamOrLabel);
    if (matched) {
      if (drained) drainedUpstreams.add(upstreamOrLabel);
      else drainedUpstreams.delete(upstreamOrLabel);
    }
    for (const endpoint of members) {
      if (endpoint.label !== upstreamOrLabel && endpoint.upstream !== upstreamOrLabel) continue;
      matched = true;
      endpoint.drained = drained;
      this.refreshState(endpoint, drained ? 'admin_drain' : 'admin_enable');
    }
    return matched;
  }

  /** New members, settings or checks: recount, rebalance, and watch what needs it (all of them when `rewatchAll`). */
  private membersChanged(change: MemberChange, rewatchAll: boolean): void {
    for (const endpoint of change.removed) this.health.unwatch(endpoint);
    this.healthy = 0;
    this.available = 0;
    for (const endpoint of change.members) {
      if (endpoint.state !== 'healthy') continue;
      this.healthy++;
      if (endpoint.active < endpoint.maxConnections) this.available++;
    }
    this.balancer.setEndpoints(change.members);
    if (!this.closed) for (const endpoint of rewatchAll ? change.members : change.added) this.health.watch(endpoint);
    // New members or higher limits may be room for connections waiting on a full pool.
    if (this.available > 0) this.notifyCapacity();
  }
}
