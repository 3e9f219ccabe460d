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
 * The rules are a config snapshot's (a reload builds a new Admission); the counts and the
 * waiting line they act on are the listener's (ConnectionLimits, AdmissionQueue), kept
 * across reloads. Because waiters are served the moment room appears, a newcomer who fits
 * never overtakes a waiter who would have fitted.
 *
 * With `limits_scope: cluster`, rules 3-5 are one check-and-take in Redis (`shared`):
 * admit() then answers a promise (settled within `cluster.timeout`); there is no queue.
 *
 * Client addresses are canonicalised once (IPv4-mapped IPv6 -> IPv4), so one client has
 * one rate bucket and one per-IP count however it connects.
 */
import type { AccessList } from './access-list.js';
import { unmapIPv4 } from '../net/address.js';
import type { ConnectionLimits, Slot } from './limits.js';
import type { RateLimiter } from './rate-limit.js';
import type { Schedule } from './schedule.js';
import type { AdmissionQueue } from './admission-queue.js';

/** Why a client was refused; 'shutdown' is for clients arriving or queued when the listener closes. */
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
  /** The listener's waiting line (used with `on_limit: queue`); once closed, everyone is refused 'shutdown'. */
  queue: AdmissionQueue;
  /** the clock for the schedule; tests pass fixed instants */
  now?: () => Date;
}

/** Refusals carry no per-connection data, so each is one shared frozen object. */
export const REFUSED: Readonly<Record<RefusalReason, AdmissionResult>> = {
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
    // no count was taken
  },
});
const ADMITTED_UNLIMITED: AdmissionResult = Object.freeze({ admitted: true, slot: UNLIMITED_SLOT });

function refusal(reason: RefusalReason): AdmissionResult {
  return Object.freeze({ admitted: false, reason });
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
  readonly #queue: AdmissionQueue;

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
    this.#queue = options.queue;
  }

  /**
   * The synchronous fast path, run once per accepted connection with the client's
   * address as Node.js reports it. 'queue' means: pause the client and call wait().
   */
  admit(ip: string): AdmissionResult | 'queue' {
    const client = unmapIPv4(ip);
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
    const client = unmapIPv4(ip);
    const refused = this.#refuseOnArrival(client);
    if (refused !== undefined) return refused;
    if (this.#shared === undefined) return ADMITTED_UNLIMITED;
    return this.#shared.acquire(client).then(this.#settleShared);
  }

  /** Rules 1 and 2 (and a closed admission): the refusal, or undefined to go on. */
  #refuseOnArrival(client: string): AdmissionResult | undefined {
    if (this.#queue.closed) return REFUSED.shutdown;
    if (this.#access !== undefined && !this.#access.allows(client)) return REFUSED.acl;
    if (this.#schedule !== undefined && !this.#schedule.isOpen(this.#now())) return REFUSED.schedule;
    return undefined;
  }

  /**
   * Queues a client that admit() answered 'queue' for, for up to `queue_timeout`: see
   * AdmissionQueue.wait() for the answers `done` gets. Returns the withdrawal.
   */
  wait(ip: string, done: (result: AdmissionResult) => void): () => void {
    return this.#queue.wait(unmapIPv4(ip), this.#queueTimeoutMs, done);
  }

  /** A shared answer becomes a result; one that comes after the listener closed gives its slot back. */
  readonly #settleShared = (answer: Slot | 'rate_limit' | 'limit' | 'cluster_unavailable'): AdmissionResult => {
    if (typeof answer === 'string') return REFUSED[answer];
    if (!this.#queue.closed) return { admitted: true, slot: answer };
    answer.release();
    return REFUSED.shutdown;
  };
}
