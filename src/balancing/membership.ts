/**
 * Which endpoints a pool has: its upstreams (the config's, as changed at run time) resolved
 * to addresses, one Endpoint per address, and the re-resolution of names that keeps that
 * list current. Endpoints are identified by label ("10.0.0.1:5432") for as long as the pool
 * lives, across reloads: an address that stays keeps its object (state, counters), and one
 * that leaves with connections still open is remembered until they close, so that if it comes
 * back (DNS, a reload, the admin API) it is the same object and its count stays right.
 */
import type { Logger } from 'pino';
import { derivedState, Endpoint } from './endpoint.js';
import { formatHostPort } from '../net/address.js';
import { isIpLiteral, resolveHost, type Lookup } from './resolver.js';

/** One configured upstream: `address` as written ("db.internal:5432"), host and port split. */
export interface UpstreamSpec {
  address: string;
  host: string;
  port: number;
  weight: number;
  maxConnections?: number;
}

/** What each upstream's lookup answered; undefined where it failed (the last answer stands). */
export type Resolution = ReadonlyMap<string, readonly string[] | undefined>;

export interface MembershipOptions {
  listener: string;
  logger: Logger;
  lookup: Lookup;
  /** How often names are resolved again. */
  resolveIntervalMs: number;
  /** Re-resolution changed some upstream's addresses: the members are to be recomputed. */
  onResolved: () => void;
}

/** The outcome of a recomputation: the members now, and those that joined or left. */
export interface MemberChange {
  readonly members: readonly Endpoint[];
  readonly added: readonly Endpoint[];
  readonly removed: readonly Endpoint[];
}

export class Membership {
  /** The upstreams as currently set. */
  specs: readonly UpstreamSpec[] = [];
  members: readonly Endpoint[] = [];
  private byLabel = new Map<string, Endpoint>();
  /** Endpoints no longer members whose connections are still open, by label. */
  private readonly departed = new Map<string, Endpoint>();
  /** Last successful resolution per upstream address, kept when a later lookup fails. */
  private readonly resolved = new Map<string, readonly string[]>();
  /** Upstreams drained as a whole (admin): endpoints DNS adds to them later start drained. */
  readonly drainedUpstreams = new Set<string>();
  private readonly reportedDuplicates = new Set<string>();
  private resolveTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: MembershipOptions) {}

  /** Looks up the addresses of `specs` (names through DNS; literals as they are); changes nothing. */
  async resolve(specs: readonly UpstreamSpec[]): Promise<Resolution> {
    const { logger, listener, lookup } = this.options;
    const answers = await Promise.all(
      specs.map((spec) =>
        resolveHost(spec.host, lookup).catch((error: Error) => {
          logger.warn(
            { event: 'upstream_resolve_failed', listener, upstream: spec.address, error: error.message },
            `cannot resolve ${spec.address}: ${error.message}`,
          );
          return undefined;
        }),
      ),
    );
    return new Map(specs.map((spec, index) => [spec.address, answers[index]]));
  }

  /**
   * The upstreams as they are now (a new plan's, or after a run-time change), with the
   * addresses just looked up for them, if any: failed lookups keep their last answer.
   */
  update(specs: readonly UpstreamSpec[], resolution?: Resolution): MemberChange {
    this.specs = specs;
    const current = new Set(specs.map((spec) => spec.address));
    for (const address of this.resolved.keys()) if (!current.has(address)) this.resolved.delete(address);
    for (const address of this.drainedUpstreams) if (!current.has(address)) this.drainedUpstreams.delete(address);
    if (resolution) this.record(resolution);
    this.scheduleResolve();
    return this.recompute();
  }

  isMember(endpoint: Endpoint): boolean {
    return this.byLabel.get(endpoint.label) === endpoint;
  }

  /** The member labelled `label`, if any. */
  get(label: string): Endpoint | undefined {
    return this.byLabel.get(label);
  }

  /** A departed endpoint's last connection closed: nothing holds it any more. */
  forget(endpoint: Endpoint): void {
    if (this.departed.get(endpoint.label) === endpoint) this.departed.delete(endpoint.label);
  }

  /** Stops re-resolving. */
  close(): void {
    this.closed = true;
    clearTimeout(this.resolveTimer);
    this.resolveTimer = undefined;
  }

  /** Keeps the new answers of `resolution`; logs the names whose addresses changed. Returns whether any did. */
  private record(resolution: Resolution): boolean {
    let changed = false;
    for (const [address, addresses] of resolution) {
      const spec = this.specs.find((current) => current.address === address);
      if (spec === undefined || addresses === undefined) continue; // removed meanwhile, or the lookup failed
      const known = this.resolved.get(address);
      if (known !== undefined && sameList(known, addresses)) continue;
      changed = true;
      this.resolved.set(address, addresses);
      if (!isIpLiteral(spec.host)) {
        this.options.logger.info(
          { event: 'upstream_resolved', listener: this.options.listener, upstream: address, addresses },
          `${address} resolves to ${addresses.join(', ') || 'nothing'}`,
        );
      }
    }
    return changed;
  }

  /** Only names need resolving again (addresses never change); one timer per pool. */
  private scheduleResolve(): void {
    const named = this.specs.some((spec) => !isIpLiteral(spec.host));
    if (!named || this.closed) {
      clearTimeout(this.resolveTimer);
      this.resolveTimer = undefined;
    } else if (this.resolveTimer === undefined) {
      this.resolveTimer = setTimeout(() => void this.reresolve(), this.options.resolveIntervalMs);
      this.resolveTimer.unref();
    }
  }

  private async reresolve(): Promise<void> {
    const changed = this.record(await this.resolve(this.specs));
    this.resolveTimer = undefined;
    if (this.closed) return;
    if (changed) this.options.onResolved();
    this.scheduleResolve();
  }

  /** The endpoints the upstreams and their addresses call for, reusing (and reconfiguring) known ones. */
  private recompute(): MemberChange {
    const previous = this.members;
    const members: Endpoint[] = [];
    const byLabel = new Map<string, Endpoint>();
    for (const spec of this.specs) {
      const settings = { upstream: spec.address, weight: spec.weight, maxConnections: spec.maxConnections };
      for (const host of this.resolved.get(spec.address) ?? []) {
        const label = formatHostPort(host, spec.port);
        if (byLabel.has(label)) {
          this.reportDuplicate(label, spec.address);
          continue;
        }
        let endpoint = this.byLabel.get(label) ?? this.departed.get(label);
        if (endpoint !== undefined) {
          this.departed.delete(label);
          endpoint.reconfigure(settings);
        } else {
          endpoint = new Endpoint(host, spec.port, settings);
          endpoint.drained = this.drainedUpstreams.has(spec.address);
          endpoint.state = derivedState(endpoint);
        }
        byLabel.set(label, endpoint);
        members.push(endpoint);
      }
    }
    const added = members.filter((endpoint) => !this.isMember(endpoint));
    const removed = previous.filter((endpoint) => byLabel.get(endpoint.label) !== endpoint);
    for (const endpoint of removed) if (endpoint.active > 0) this.departed.set(endpoint.label, endpoint);
    this.members = members;
    this.byLabel = byLabel;
    return { members, added, removed };
  }

  private reportDuplicate(label: string, upstream: string): void {
    if (this.reportedDuplicates.has(label)) return;
    this.reportedDuplicates.add(label);
    this.options.logger.warn(
      { event: 'upstream_duplicate', listener: this.options.listener, upstream, endpoint: label },
      `${upstream} resolves to ${label}, already an endpoint of this listener: counted once`,
    );
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, index) => item === b[index]);
}
