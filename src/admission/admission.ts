/**
 * The admission stage between accept and upstream connect: it decides, the listener
 * acts (closing a refused client without a byte, or pausing a queued one).
 *
 * Rules run in this fixed order; the first that refuses names the reason:
 *   1. access list   -> 'acl'
 *   2. schedule      -> 'schedule'
 *   3. rate limit    -> 'rate_limit' (so only attempts that passed 1 and 2 spend tokens)
 *   4. per-IP limit  -> 'limit'
 *   5. listener limit-> 'limit'
 * Over a limit with `on_limit: queue`, admit() answers 'queue' and the caller hands the
 * client to wait(): it is admitted when a slot frees or refused with 'queue_timeout'.
 * Rules 1-3 are judged once, on arrival; a waiter is not judged again.
 *
 * Queue order: on every release, the first waiter (FIFO) that fits takes the slot,
 * synchronously, so nobody can take it in between. A waiter held back by its own
 * per-IP limit does not block waiters from other addresses behind it. Because waiters
 * are served the moment room appears, a newcomer who fits never overtakes a waiter who
 * would have fitted. Finding that waiter scans at most `maxQueue` entries.
 *
 * With `limits_scope: cluster`, rules 3-5 are one check-and-take in Redis (`shared`):
 * admit() then answers a promise (settled within `cluster.timeout`); there is no queue.
 *
 * Client addresses are canonicalised once (IPv4-mapped IPv6 -> IPv4), so one client has
 * one rate bucket and one per-IP count however it connects.
 */
import type { AccessList } from './access-list.js';
import { canonicalClientIp } from './client-address.js';
import type { ConnectionLimits, Slot } from './limits.js';
import type { RateLimiter } from './rate-limit.js';
import type { Schedule } from './schedule.js';
import { WaitQueue } from './wait-queue.js';

/** Why a client was refused; 'shutdown' is for waiters still queued when close() runs. */
export type RefusalReason = 'acl' | 'schedule' | 'rate_limit' | 'limit' | 'queue_timeout' | 'shutdown' | 'cluster_unavailable';

export type AdmissionResult = { admitted: true; slot: Slot } | { admitted: false; reason: RefusalReason };

export type OnLimit = 'reject' | 'queue';

/** Rules 3-5 decided elsewhere (src/cluster): a slot, or why not. Never rejects. */
export interface SharedLimits {
  acquire(ip: string): Promise<Slot | 'rate_limit' | 'limit' | 'cluster_unavailable'>;
}

export interface AdmissionOptions {
  access?: AccessList;
  schedule?: Schedule;
  rateLimit?: RateLimiter;
  limits?: ConnectionLimits;
  /** Instead of rateLimit and limits (which are then ignored): `limits_scope: cluster`. */
  shared?: SharedLimits;
  onLimit: OnLimit;
  queueTimeoutMs: number;
  /** most waiters at once (`max_queue`, default 1000 in the config) */
  maxQueue: number;
  /** the clock for the schedule; tests pass fixed instants */
  now?: () => Date;
}

interface Waiter {
  ip: string;
  done: (result: AdmissionResult) => void;
}

/** Refusals carry no per-connection data, so each is one shared frozen object. */
const REFUSED: Readonly<Record<RefusalReason, AdmissionResult>> = {
  acl: refusal('acl'),
  schedule: refusal('schedule'),
  rate_limit: refusal('rate_limit'),
  limit: refusal('limit'),
  queue_timeout: refusal('queue_timeout'),
  shutdown: refusal('shutdown'),
  cluster_unavailable: refusal('cluster_unavailable'),
};

/** Without connection limits there is nothing to give back. */
const UNLIMITED_SLOT: Slot = Object.freeze({
  release(): void {
    // no counter to decrement
  },
});
const ADMITTED_UNLIMITED: AdmissionResult = Object.freeze({ admitted: true, slot: UNLIMITED_SLOT });

function refusal(reason: RefusalReason): AdmissionResult {
  return Object.freeze({ admitted: false, reason });
}

function refuseOnTimeout(waiter: Waiter): void {
  waiter.done(REFUSED.queue_timeout);
}

export class Admission {
  readonly #access: AccessList | undefined;
  readonly #schedule: Schedule | undefined;
  readonly #rateLimit: RateLimiter | undefined;
  readonly #limits: ConnectionLimits | undefined;
  readonly #shared: SharedLimits | undefined;
  readonly #queueing: boolean;
  readonly #queueTimeoutMs: number;
  readonly #now: () => Date;
  readonly #queue: WaitQueue<Waiter>;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(options: AdmissionOptions) {
    this.#access = options.access?.isOpen ? undefined : options.access;
    this.#schedule = options.schedule;
    this.#shared = options.shared;
    this.#rateLimit = options.shared ? undefined : options.rateLimit;
    const limits = options.shared ? undefined : options.limits;
    this.#limits = limits;
    this.#queueing = options.onLimit === 'queue' && limits !== undefined;
    this.#queueTimeoutMs = options.queueTimeoutMs;
    this.#now = options.now ?? (() => new Date());
    this.#queue = new WaitQueue({ maxSize: this.#queueing ? options.maxQueue : 0 });
    if (this.#queueing && limits !== undefined) {
      const fits = (waiter: Waiter): boolean => limits.canAcquire(waiter.ip);
      this.#unsubscribe = limits.onRelease(() => this.#serveWaiters(limits, fits));
    } else {
      this.#unsubscribe = noop;
    }
  }

  /**
   * The synchronous fast path, run once per accepted connection with the client's
   * address as Node.js reports it. 'queue' means: pause the client and call wait().
   */
  admit(ip: string): AdmissionResult | 'queue' {
    const client = canonicalClientIp(ip);
    const refused = this.#refuseOnArrival(client);
    if (refused !== undefined) return refused;
    if (this.#rateLimit !== undefined && !this.#rateLimit.take(client)) return REFUSED.rate_limit;
    if (this.#limits === undefined) return ADMITTED_UNLIMITED;
    const slot = this.#limits.tryAcquire(client);
    if (slot !== 'limit') return { admitted: true, slot };
    return this.#queueing && !this.#queue.full ? 'queue' : REFUSED.limit;
  }

  /**
   * admit() for `shared` limits: rules 1-2 here, synchronously; rules 3-5 by the shared
   * limits, whose promise settles within their own bound and never rejects.
   */
  admitShared(ip: string): AdmissionResult | Promise<AdmissionResult> {
    const client = canonicalClientIp(ip);
    const refused = this.#refuseOnArrival(client);
    if (refused !== undefined) return refused;
    if (this.#shared === undefined) return ADMITTED_UNLIMITED;
    return this.#shared.acquire(client).then(this.#settleShared);
  }

  /** Rules 1 and 2 (and a closed admission): the refusal, or undefined to go on. */
  #refuseOnArrival(client: string): AdmissionResult | undefined {
    if (this.#closed) return REFUSED.shutdown;
    if (this.#access !== undefined && !this.#access.allows(client)) return REFUSED.acl;
    if (this.#schedule !== undefined && !this.#schedule.isOpen(this.#now())) return REFUSED.schedule;
    return undefined;
  }

  /**
   * Queues a client that admit() answered 'queue' for. `done` runs exactly once:
   * admitted with a slot, or refused ('queue_timeout', 'shutdown', or 'limit' if the
   * queue filled up meanwhile); it runs before wait() returns when the answer is
   * immediate (room already free, queue full, admission closed). The returned function
   * withdraws the client (it left): `done` then never runs.
   */
  wait(ip: string, done: (result: AdmissionResult) => void): () => void {
    const client = canonicalClientIp(ip);
    if (this.#closed) {
      done(REFUSED.shutdown);
      return noop;
    }
    const slot = this.#limits?.tryAcquire(client) ?? UNLIMITED_SLOT;
    if (slot !== 'limit') {
      done(slot === UNLIMITED_SLOT ? ADMITTED_UNLIMITED : { admitted: true, slot });
      return noop;
    }
    const ticket = this.#queue.enqueue({ ip: client, done }, this.#queueTimeoutMs, refuseOnTimeout);
    if (ticket === undefined) {
      done(REFUSED.limit);
      return noop;
    }
    return () => void ticket.cancel();
  }

  get queueLength(): number {
    return this.#queue.length;
  }

  /**
   * Stops admitting: admit() and wait() answer 'shutdown' from now on, every queued
   * client is refused with 'shutdown' (its timer cleared), and the release listener is
   * removed. On a config reload, share the ConnectionLimits (reconfigure it) with the
   * new Admission so counts carry over, and close the old one after `queueTimeoutMs`:
   * by then each of its waiters has been served or timed out, so nobody is refused.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (let waiter = this.#queue.shift(); waiter !== undefined; waiter = this.#queue.shift()) {
      waiter.done(REFUSED.shutdown);
    }
  }

  /** A shared answer becomes a result; one that comes after close() gives its slot back. */
  readonly #settleShared = (answer: Slot | 'rate_limit' | 'limit' | 'cluster_unavailable'): AdmissionResult => {
    if (typeof answer === 'string') return REFUSED[answer];
    if (!this.#closed) return { admitted: true, slot: answer };
    answer.release();
    return REFUSED.shutdown;
  };

  /** Hands freed slots to the first waiters that fit, in queue order. */
  #serveWaiters(limits: ConnectionLimits, fits: (waiter: Waiter) => boolean): void {
    while (!limits.full && this.#queue.length > 0) {
      const waiter = this.#queue.removeFirst(fits);
      if (waiter === undefined) return;
      // Cannot be 'limit': canAcquire just said yes and nothing ran in between.
      const slot = limits.tryAcquire(waiter.ip) as Slot;
      waiter.done({ admitted: true, slot });
    }
  }
}

function noop(): void {
  // nothing to do
}
