/**
 * The `max_connections` and `max_connections_per_ip` rules: concurrent connections per
 * listener and per client address.
 *
 * A connection holds a Slot from admission to teardown. Counters cannot drift: a slot
 * is counted once when acquired and uncounted by its first release() only, however
 * many teardown paths call it. Per-IP counts are kept even without a per-IP limit (so
 * a reload that adds one sees the connections already open) and a count's map entry
 * is deleted at zero, so the map holds only addresses with open connections.
 */
export interface ConnectionLimitOptions {
  /** concurrent connections on the listener; unlimited when absent */
  maxConnections?: number;
  /** concurrent connections from one client address; unlimited when absent */
  maxConnectionsPerIp?: number;
}

export interface Slot {
  /** Gives the slot back; later calls do nothing. */
  release(): void;
}

class HeldSlot implements Slot {
  #held = true;

  constructor(
    readonly ip: string,
    readonly onRelease: (ip: string) => void,
  ) {}

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.onRelease(this.ip);
  }
}

export class ConnectionLimits {
  #maxConnections = Number.POSITIVE_INFINITY;
  #maxConnectionsPerIp = Number.POSITIVE_INFINITY;
  #active = 0;
  readonly #activeByIp = new Map<string, number>();
  readonly #releaseListeners = new Set<() => void>();
  /** One function for every slot, instead of a closure per connection. */
  readonly #releaseSlot = (ip: string): void => this.#release(ip);

  constructor(options: ConnectionLimitOptions = {}) {
    this.reconfigure(options);
  }

  /**
   * Changes the limits in place, keeping the counts of open connections (for a config
   * reload). Lowering a limit closes nothing; new connections wait until under it.
   */
  reconfigure(options: ConnectionLimitOptions): void {
    this.#maxConnections = limitOrInfinity('maxConnections', options.maxConnections);
    this.#maxConnectionsPerIp = limitOrInfinity('maxConnectionsPerIp', options.maxConnectionsPerIp);
    this.#notifyRelease();
  }

  /** Whether tryAcquire(ip) would succeed now. */
  canAcquire(ip: string): boolean {
    // Per-IP first, then the listener: the documented order of the rules.
    return (this.#activeByIp.get(ip) ?? 0) < this.#maxConnectionsPerIp && this.#active < this.#maxConnections;
  }

  /** `ip` should be canonical (see unmapIPv4 in net/address.ts) so one client has one count. */
  tryAcquire(ip: string): Slot | 'limit' {
    const count = this.#activeByIp.get(ip) ?? 0;
    if (count >= this.#maxConnectionsPerIp || this.#active >= this.#maxConnections) return 'limit';
    this.#activeByIp.set(ip, count + 1);
    this.#active++;
    return new HeldSlot(ip, this.#releaseSlot);
  }

  get active(): number {
    return this.#active;
  }

  activeFor(ip: string): number {
    return this.#activeByIp.get(ip) ?? 0;
  }

  /** True when the listener limit is reached: no address can acquire. */
  get full(): boolean {
    return this.#active >= this.#maxConnections;
  }

  /** Addresses with open connections (the per-IP map's size). */
  get trackedIps(): number {
    return this.#activeByIp.size;
  }

  /**
   * Calls `listener` after every release (and every reconfigure), when room may have
   * appeared; returns the unsubscribe function. The counts are already updated when it
   * runs, so a listener may acquire at once.
   */
  onRelease(listener: () => void): () => void {
    this.#releaseListeners.add(listener);
    return () => void this.#releaseListeners.delete(listener);
  }

  #release(ip: string): void {
    const count = this.#activeByIp.get(ip) ?? 0;
    if (count <= 1) this.#activeByIp.delete(ip);
    else this.#activeByIp.set(ip, count - 1);
    this.#active--;
    this.#notifyRelease();
  }

  #notifyRelease(): void {
    for (const listener of this.#releaseListeners) listener();
  }
}

function limitOrInfinity(name: string, value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be an integer >= 0, got ${value}`);
  return value;
}
