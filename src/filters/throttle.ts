/**
 * `throttle`: a token bucket of `burst` bytes refilled at `bytes_per_second`. A chunk that
 * the bucket cannot cover is sent in pieces as tokens accrue, and data() returns a promise
 * until the last piece is out: the chain stops reading meanwhile, so the filter holds at
 * most one chunk (bounded memory; the sender is slowed down by TCP backpressure).
 */
import { performance } from 'node:perf_hooks';
import type { Filter, Push } from './filter.js';

export interface ThrottleOptions {
  readonly bytesPerSecond: number;
  /** Bucket size: how many bytes may pass at once after an idle period. */
  readonly burst: number;
}

/** The default bucket: 50 ms worth of the rate (at least one byte). */
export function defaultBurst(bytesPerSecond: number): number {
  return Math.max(1, Math.floor(bytesPerSecond / 20));
}

class ThrottleFilter implements Filter {
  private tokens: number;
  private refilledAt = performance.now();
  private rest: Buffer | undefined;
  private push: Push | undefined;
  private done: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ThrottleOptions) {
    this.tokens = options.burst;
  }

  data(chunk: Buffer, push: Push): void | Promise<void> {
    this.refill(this.options.burst);
    if (this.tokens >= chunk.length) {
      this.tokens -= chunk.length;
      push(chunk);
      return undefined;
    }
    this.rest = chunk;
    this.push = push;
    return new Promise<void>((resolve) => {
      this.done = resolve;
      this.step();
    });
  }

  /** Removed at run time: the rest of the chunk leaves now. */
  flush(push: Push): void {
    const { rest, done } = this;
    if (rest !== undefined && rest.length > 0) push(rest);
    this.destroy();
    done?.();
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = this.rest = this.push = this.done = undefined;
  }

  /** Sends what the tokens cover, then sleeps until the next piece is covered. */
  private readonly step = (): void => {
    this.timer = undefined;
    const rest = this.rest!;
    // While a chunk waits, tokens are owed even past the bucket's cap: a timer that fired
    // late (a busy event loop) catches up, so the average rate holds. The cap applies again
    // once this chunk is out, so the catch-up is at most one chunk.
    this.refill(Infinity);
    const size = Math.min(Math.floor(this.tokens), rest.length);
    if (size > 0) {
      this.tokens -= size;
      this.rest = rest.subarray(size);
      this.push!(rest.subarray(0, size));
    }
    this.tokens = Math.min(this.tokens, this.options.burst);
    if (this.rest === undefined) return; // destroyed by the push (the connection closed)
    if (this.rest.length === 0) {
      const done = this.done!;
      this.rest = this.push = this.done = undefined;
      done();
      return;
    }
    // Wake when the rest, or half a bucket, is covered (a few wake-ups per burst).
    const wanted = Math.min(this.rest.length, Math.max(1, Math.floor(this.options.burst / 2))) - this.tokens;
    this.timer = setTimeout(this.step, Math.max(1, Math.ceil((wanted * 1000) / this.options.bytesPerSecond))).unref();
  };

  private refill(cap: number): void {
    const now = performance.now();
    this.tokens = Math.min(cap, this.tokens + ((now - this.refilledAt) * this.options.bytesPerSecond) / 1000);
    this.refilledAt = now;
  }
}

export function createThrottleFilter(options: ThrottleOptions): Filter {
  return new ThrottleFilter(options);
}
