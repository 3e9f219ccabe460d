/**
 * The `new_connections_per_ip` rule: a token bucket per client address.
 *
 * Each key may start `limit` connections at once and then one more every
 * `perMs / limit` ms (the bucket refills continuously up to `limit`). Memory is
 * bounded so a flood from many addresses cannot exhaust it:
 * - a bucket untouched for `perMs` is full again, i.e. the same as no bucket, and is
 *   dropped by a sweep that runs at most once per `perMs` (amortised O(1));
 * - at `maxEntries` the least recently used bucket is evicted. An evicted key starts
 *   again with a full bucket: under a flood wider than `maxEntries` addresses the
 *   limiter errs towards admitting rather than towards unbounded memory.
 */
import { performance } from 'node:perf_hooks';

export interface RateLimitOptions {
  /** connections allowed per `perMs`, also the burst size; an integer >= 1 */
  limit: number;
  perMs: number;
  /** most keys tracked at once; default 100,000 */
  maxEntries?: number;
  /** the clock take() reads by default (ms); default the monotonic performance.now. Tests inject one. */
  now?: () => number;
}

/** A key's bucket, also a node of the recency list (least recently used first). */
interface Bucket {
  key: string;
  tokens: number;
  updatedMs: number;
  older: Bucket | undefined;
  newer: Bucket | undefined;
}

const DEFAULT_MAX_ENTRIES = 100_000;

export class RateLimiter {
  readonly #limit: number;
  readonly #perMs: number;
  readonly #maxEntries: number;
  readonly #buckets = new Map<string, Bucket>();
  /**
   * Recency order as a linked list through the buckets, not Map order: re-inserting a
   * Map key on every use leaves deleted slots that make iteration from the front (to
   * find the oldest) crawl until the Map rehashes.
   */
  #oldest: Bucket | undefined;
  #newest: Bucket | undefined;
  #lastSweepMs = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;

  constructor(options: RateLimitOptions) {
    const { limit, perMs, maxEntries = DEFAULT_MAX_ENTRIES } = options;
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`rate limit: limit must be an integer >= 1, got ${limit}`);
    if (!Number.isFinite(perMs) || perMs <= 0) throw new RangeError(`rate limit: per must be a positive duration, got ${perMs} ms`);
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError(`rate limit: maxEntries must be an integer >= 1, got ${maxEntries}`);
    this.#limit = limit;
    this.#perMs = perMs;
    this.#maxEntries = maxEntries;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Spends one token of `key`'s bucket; false when it is empty (over the rate).
   * `nowMs` defaults to the limiter's clock (performance.now: monotonic, immune to wall-clock jumps).
   */
  take(key: string, nowMs: number = this.#now()): boolean {
    if (nowMs - this.#lastSweepMs >= this.#perMs) this.#sweepIdle(nowMs);
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = this.#evictIfFull() ?? { key, tokens: 0, updatedMs: 0, older: undefined, newer: undefined };
      bucket.key = key;
      bucket.tokens = this.#limit - 1;
      bucket.updatedMs = nowMs;
      this.#buckets.set(key, bucket);
      this.#append(bucket);
      return true;
    }
    this.#unlink(bucket);
    this.#append(bucket);
    const elapsed = nowMs - bucket.updatedMs;
    if (elapsed > 0) {
      // Multiply before dividing: whole periods then refill exactly, without rounding drift.
      bucket.tokens = Math.min(this.#limit, bucket.tokens + (elapsed * this.#limit) / this.#perMs);
      bucket.updatedMs = nowMs;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Whether this limiter enforces `limit` per `perMs` (a reload that keeps the rate keeps the buckets). */
  enforces(limit: number, perMs: number): boolean {
    return this.#limit === limit && this.#perMs === perMs;
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Drops the least recently used bucket when at capacity, returning it for reuse. */
  #evictIfFull(): Bucket | undefined {
    const oldest = this.#oldest;
    if (this.#buckets.size < this.#maxEntries || oldest === undefined) return undefined;
    this.#forget(oldest);
    return oldest;
  }

  /** Buckets idle for a whole period are full again: forgetting them changes nothing. */
  #sweepIdle(nowMs: number): void {
    this.#lastSweepMs = nowMs;
    while (this.#oldest !== undefined && nowMs - this.#oldest.updatedMs >= this.#perMs) this.#forget(this.#oldest);
  }

  #forget(bucket: Bucket): void {
    this.#buckets.delete(bucket.key);
    this.#unlink(bucket);
  }

  #append(bucket: Bucket): void {
    bucket.older = this.#newest;
    bucket.newer = undefined;
    if (this.#newest === undefined) this.#oldest = bucket;
    else this.#newest.newer = bucket;
    this.#newest = bucket;
  }

  #unlink(bucket: Bucket): void {
    if (bucket.older === undefined) this.#oldest = bucket.newer;
    else bucket.older.newer = bucket.newer;
    if (bucket.newer === undefined) this.#newest = bucket.older;
    else bucket.newer.older = bucket.older;
    bucket.older = bucket.newer = undefined;
  }
}
