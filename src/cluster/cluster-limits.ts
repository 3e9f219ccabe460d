/**
 * One listener's limits shared through Redis (`limits_scope: cluster`): `max_connections`,
 * `max_connections_per_ip` and `new_connections_per_ip`, counted across every process that
 * shares the Redis, the prefix and the listener name.
 *
 * This process keeps a ledger of what it holds (`held`: open connections per address, those
 * admitted by Redis and those admitted by `on_error: allow` alike) and keeps Redis's part for
 * this process equal to it:
 * - acquire: one ACQUIRE script per connection (check-and-take, atomic), answered within
 *   `timeout` or decided by `on_error`;
 * - release: batched per event-loop turn into one ADJUST (net delta per address);
 * - whenever the two may disagree (Redis restarted, the link dropped with commands in flight,
 *   a reply came after `on_error` had decided, this process was reaped) the ledger is marked
 *   dirty and a SYNC replaces Redis's part with the ledger. Commands on one connection run in
 *   the order sent, so an acquire sent before a SYNC ran before it: if it then admits, the
 *   SYNC (which counted only decided connections) lacks it, and a +1 goes out with the next
 *   batch.
 */
import type { SharedLimits } from '../admission/admission.js';
import type { Slot } from '../admission/limits.js';
import type { ClusterMetrics } from '../observability/metrics.js';

/** A slot, or why not. */
export type SharedAnswer = Awaited<ReturnType<SharedLimits['acquire']>>;

export interface SharedLimitsSpec {
  maxConnections?: number | undefined;
  maxConnectionsPerIp?: number | undefined;
  newConnectionsPerIp?: { limit: number; perMs: number } | undefined;
}

export type ScriptName = 'acquire' | 'adjust' | 'sync';

/** What a ledger needs from the process's Redis link. */
export interface ScriptRunner {
  /** Connected, and not known to be stalled: commands may be sent. */
  readonly usable: boolean;
  readonly onError: 'allow' | 'deny';
  readonly timeoutMs: number;
  readonly metrics: ClusterMetrics;
  /** This process's id in the leases (unique per process start). */
  readonly processId: string;
  readonly leaseMs: number;
  /** How long idle keys live (several leases). */
  readonly keyTtlMs: number;
  run(script: ScriptName, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** An acquire got no answer within the timeout: Redis is treated as down until it answers. */
  stalled(): void;
}

/** An acquire sent to Redis and not answered yet. */
class InFlight {
  decided = false;
  /** With `decided`: whether this connection was admitted (it is then in `held`). */
  allowed = false;
  /** A SYNC went out after this acquire: Redis's count for it is `countedBySync`, whatever it answers. */
  covered = false;
  countedBySync = false;

  constructor(
    readonly ip: string,
    readonly sentAt: number,
    readonly resolve: (answer: SharedAnswer) => void,
  ) {}
}

class SharedSlot implements Slot {
  #held = true;

  constructor(
    readonly ip: string,
    readonly limits: ClusterLimits,
  ) {}

  release(): void {
    if (!this.#held) return;
    this.#held = false;
    this.limits.release(this.ip);
  }
}

const VERDICT_ADMITTED = 1;
const VERDICT_RATE_LIMIT = 2;

export class ClusterLimits implements SharedLimits {
  readonly #runner: ScriptRunner;
  readonly listener: string;
  readonly #keys: { active: string; ips: string; procs: string; held: string; heldPrefix: string; ratePrefix: string };
  #args: { maxConnections: number; maxPerIp: number; intervalUs: number; burstUs: number } = { maxConnections: -1, maxPerIp: -1, intervalUs: 0, burstUs: 0 };
  readonly #held = new Map<string, number>();
  #heldTotal = 0;
  /** Net releases and corrections not sent yet, per address. */
  readonly #deltas = new Map<string, number>();
  #flushScheduled = false;
  readonly #inFlight = new Set<InFlight>();
  /** In-flight acquires still waiting for their answer, oldest first (for the timeout). */
  readonly #undecided = new Set<InFlight>();
  #timer: NodeJS.Timeout | undefined;
  #dirty = false;
  #syncing = false;
  #closed = false;
  /** The listener's count across the cluster, as last answered by Redis. */
  clusterActive = 0;

  constructor(runner: ScriptRunner, prefix: string, listener: string) {
    this.#runner = runner;
    this.listener = listener;
    // One hash tag per listener: every key of a script lives in one Redis Cluster slot.
    const base = `${prefix}:{${listener}}`;
    const heldPrefix = `${base}:held:`;
    this.#keys = {
      active: `${base}:active`,
      ips: `${base}:ips`,
      procs: `${base}:procs`,
      held: heldPrefix + runner.processId,
      heldPrefix,
      ratePrefix: `${base}:rate:`,
    };
  }

  /** The limits to enforce (start and every reload): sent with each acquire, so they apply at once. */
  configure(spec: SharedLimitsSpec): void {
    const rate = spec.newConnectionsPerIp;
    const intervalUs = rate ? Math.max(1, Math.floor((rate.perMs * 1000) / rate.limit)) : 0;
    this.#args = {
      maxConnections: spec.maxConnections ?? -1,
      maxPerIp: spec.maxConnectionsPerIp ?? -1,
      intervalUs,
      burstUs: rate ? (rate.limit - 1) * intervalUs : 0,
    };
  }

  /** Connections this process holds on the listener. */
  get held(): number {
    return this.#heldTotal;
  }

  /** Check-and-take for a client at `ip` (canonical); never rejects, never waits longer than the timeout. */
  acquire(ip: string): Promise<SharedAnswer> {
    if (this.#closed) return Promise.resolve('cluster_unavailable');
    if (!this.#runner.usable) {
      // Redis cannot know about a connection admitted now: it learns it at the next SYNC.
      const answer = this.#onError(ip);
      if (answer !== 'cluster_unavailable') this.#markDirty();
      return Promise.resolve(answer);
    }
    return new Promise((resolve) => {
      const request = new InFlight(ip, performance.now(), resolve);
      this.#inFlight.add(request);
      this.#undecided.add(request);
      this.#armTimer();
      const { active, ips, procs, held, heldPrefix, ratePrefix } = this.#keys;
      const { maxConnections, maxPerIp, intervalUs, burstUs } = this.#args;
      this.#runner
        .run(
          'acquire',
          [active, ips, procs, held, ratePrefix + ip],
          [this.#runner.processId, this.#runner.leaseMs, this.#runner.keyTtlMs, heldPrefix, ip, maxConnections, maxPerIp, intervalUs, burstUs],
        )
        .then(
          (reply) => this.#answered(request, reply as [number, number, number]),
          () => this.#failed(request),
        );
    });
  }

  /** A slot's release (exactly once per admitted connection, through SharedSlot). */
  release(ip: string): void {
    this.#take(ip, -1);
    this.#queue(ip, -1);
  }

  /** The lease renewal (with any releases not sent yet), or a SYNC when one is due. */
  renew(): void {
    if (this.#dirty) return this.#sync();
    this.#flush();
  }

  /** The link came back (or was new): Redis may have lost everything; send the ledger. */
  resync(): void {
    this.#markDirty();
  }

  /**
   * Shutdown: unregisters this process and removes its part at once (rather than at the end
   * of its lease). Connections still open are no longer counted by the cluster.
   */
  async leave(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#deltas.clear();
    if (!this.#runner.usable) return;
    await this.#runner.run('sync', this.#syncKeys(), [...this.#syncHead(), '1']).catch(() => undefined);
  }

  #answered(request: InFlight, [verdict, fresh, active]: [number, number, number]): void {
    this.#inFlight.delete(request);
    this.clusterActive = active;
    this.#runner.metrics.clusterActive(this.listener, active);
    const admittedByRedis = verdict === VERDICT_ADMITTED;
    if (!request.decided) {
      this.#undecided.delete(request);
      request.decided = true;
      request.allowed = admittedByRedis;
      if (admittedByRedis) {
        this.#take(request.ip, 1);
        // A SYNC sent meanwhile counted only decided connections: this one is missing there.
        if (request.covered) this.#queue(request.ip, 1);
        request.resolve(new SharedSlot(request.ip, this));
      } else {
        request.resolve(verdict === VERDICT_RATE_LIMIT ? 'rate_limit' : 'limit');
      }
    } else {
      // Decided by on_error before this answer came: set things straight if they differ.
      const inRedis = request.covered ? request.countedBySync : admittedByRedis;
      if (inRedis !== request.allowed) this.#markDirty();
    }
    if (fresh === 1) this.#markDirty();
  }

  #failed(request: InFlight): void {
    this.#inFlight.delete(request);
    // Whether the script ran is unknown: only a SYNC can tell Redis the truth.
    this.#markDirty();
    if (request.decided) return;
    this.#undecided.delete(request);
    this.#decideOnError(request);
  }

  #decideOnError(request: InFlight): void {
    request.decided = true;
    const answer = this.#onError(request.ip);
    request.allowed = answer !== 'cluster_unavailable';
    request.resolve(answer);
  }

  #onError(ip: string): SharedAnswer {
    const decision = this.#runner.onError;
    this.#runner.metrics.onErrorDecision(this.listener, decision);
    if (decision === 'deny') return 'cluster_unavailable';
    this.#take(ip, 1);
    return new SharedSlot(ip, this);
  }

  /** One timer for all in-flight acquires: they share the timeout, so the oldest expires first. */
  #armTimer(): void {
    if (this.#timer !== undefined) return;
    const oldest = this.#undecided.values().next().value;
    if (oldest === undefined) return;
    const wait = Math.max(0, oldest.sentAt + this.#runner.timeoutMs - performance.now());
    this.#timer = setTimeout(this.#expire, wait);
    this.#timer.unref();
  }

  readonly #expire = (): void => {
    this.#timer = undefined;
    const deadline = performance.now() - this.#runner.timeoutMs;
    let expired = false;
    for (const request of this.#undecided) {
      if (request.sentAt > deadline) break;
      this.#undecided.delete(request);
      expired = true;
      this.#decideOnError(request);
    }
    if (expired) this.#runner.stalled();
    this.#armTimer();
  };

  #take(ip: string, n: 1 | -1): void {
    const count = (this.#held.get(ip) ?? 0) + n;
    if (count <= 0) this.#held.delete(ip);
    else this.#held.set(ip, count);
    this.#heldTotal += n;
  }

  #queue(ip: string, delta: number): void {
    const net = (this.#deltas.get(ip) ?? 0) + delta;
    if (net === 0) this.#deltas.delete(ip);
    else this.#deltas.set(ip, net);
    if (!this.#flushScheduled && this.#deltas.size > 0) {
      this.#flushScheduled = true;
      setImmediate(this.#flushSoon);
    }
  }

  readonly #flushSoon = (): void => {
    this.#flushScheduled = false;
    if (this.#deltas.size > 0) this.#flush();
  };

  /** Sends the batched deltas (none: a lease renewal) in one ADJUST. */
  #flush(): void {
    if (this.#closed) return;
    if (!this.#runner.usable) {
      // Redis learns these with the next SYNC (the ledger already has them).
      if (this.#deltas.size > 0) this.#markDirty();
      this.#deltas.clear();
      return;
    }
    const args: (string | number)[] = this.#syncHead();
    for (const [ip, delta] of this.#deltas) args.push(ip, delta);
    this.#deltas.clear();
    this.#runner.run('adjust', this.#syncKeys(), args).then(
      (reply) => {
        const [fresh, active] = reply as [number, number];
        this.clusterActive = active;
        this.#runner.metrics.clusterActive(this.listener, active);
        if (fresh === 1) this.#markDirty();
      },
      () => this.#markDirty(),
    );
  }

  #markDirty(): void {
    this.#dirty = true;
    // While Redis is down the link's resync() brings it back to this.
    if (!this.#syncing && !this.#closed && this.#runner.usable) setImmediate(this.#syncSoon);
  }

  readonly #syncSoon = (): void => {
    if (this.#dirty && !this.#syncing) this.#sync();
  };

  /** Replaces this process's part in Redis with the ledger. At most one in flight. */
  #sync(): void {
    if (this.#closed || this.#syncing || !this.#runner.usable) return;
    this.#dirty = false;
    this.#syncing = true;
    // The ledger already reflects every batched delta; those not sent are superseded.
    this.#deltas.clear();
    for (const request of this.#inFlight) {
      request.covered = true;
      request.countedBySync = request.decided && request.allowed;
    }
    const args: (string | number)[] = [...this.#syncHead(), '0'];
    for (const [ip, count] of this.#held) args.push(ip, count);
    this.#runner.run('sync', this.#syncKeys(), args).then(
      (active) => {
        this.#syncing = false;
        this.clusterActive = active as number;
        this.#runner.metrics.clusterActive(this.listener, active as number);
        if (this.#dirty) setImmediate(this.#syncSoon);
      },
      () => {
        // Retried when the link is back (resync) or at the next renewal.
        this.#syncing = false;
        this.#dirty = true;
      },
    );
  }

  #syncKeys(): string[] {
    const { active, ips, procs, held } = this.#keys;
    return [active, ips, procs, held];
  }

  #syncHead(): (string | number)[] {
    return [this.#runner.processId, this.#runner.leaseMs, this.#runner.keyTtlMs, this.#keys.heldPrefix];
  }
}
