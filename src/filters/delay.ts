/**
 * `delay`: every chunk leaves `latency` ms (± up to `jitter` ms) after it arrived, in
 * arrival order. Chunks are pipelined (many in flight, one timer for the oldest), so the
 * throughput is not cut to one chunk per latency; the bytes in flight are bounded by
 * `maxHeld`: beyond it data() returns a promise and the chain stops reading until the
 * oldest chunks have left. The throughput is thus at most maxHeld / latency.
 */
import { performance } from 'node:perf_hooks';
import type { Filter, Push } from './filter.js';

export interface DelayOptions {
  readonly latencyMs: number;
  readonly jitterMs: number;
  readonly maxHeld: number;
}

interface Delayed {
  readonly chunk: Buffer;
  readonly due: number;
}

class DelayFilter implements Filter {
  /** Oldest first; entries before `head` have left (set to undefined to free them). */
  private readonly queue: (Delayed | undefined)[] = [];
  private head = 0;
  private heldBytes = 0;
  /** Due times never decrease, so that jitter cannot reorder chunks. */
  private lastDue = 0;
  private push: Push | undefined;
  private timer: NodeJS.Timeout | undefined;
  private belowLimit: (() => void) | undefined;
  private drained: (() => void) | undefined;

  constructor(private readonly options: DelayOptions) {}

  data(chunk: Buffer, push: Push): void | Promise<void> {
    this.push = push;
    const { latencyMs, jitterMs } = this.options;
    const wait = jitterMs > 0 ? Math.max(0, latencyMs + (Math.random() * 2 - 1) * jitterMs) : latencyMs;
    this.lastDue = Math.max(this.lastDue, performance.now() + wait);
    this.queue.push({ chunk, due: this.lastDue });
    this.heldBytes += chunk.length;
    if (this.timer === undefined) this.schedule();
    if (this.heldBytes < this.options.maxHeld) return undefined;
    return new Promise<void>((resolve) => {
      this.belowLimit = resolve;
    });
  }

  /** The FIN waits until every held chunk has left on time. */
  end(): void | Promise<void> {
    if (this.head === this.queue.length) return undefined;
    return new Promise<void>((resolve) => {
      this.drained = resolve;
    });
  }

  /** Removed at run time: every held chunk leaves now, in order. */
  flush(push: Push): void {
    for (let i = this.head; i < this.queue.length; i++) push(this.queue[i]!.chunk);
    const waiting = [this.belowLimit, this.drained];
    this.destroy();
    for (const resume of waiting) resume?.();
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = this.push = this.belowLimit = this.drained = undefined;
    this.queue.length = this.head = this.heldBytes = 0;
  }

  private schedule(): void {
    const next = this.queue[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(this.release, Math.max(0, next.due - performance.now())).unref();
  }

  /** Pushes every chunk that is due, then sleeps until the next one is. */
  private readonly release = (): void => {
    this.timer = undefined;
    const now = performance.now();
    for (let next = this.queue[this.head]; next !== undefined && next.due <= now; next = this.queue[this.head]) {
      const { chunk } = next;
      this.queue[this.head++] = undefined;
      this.heldBytes -= chunk.length;
      this.push?.(chunk);
      if (this.push === undefined) return; // destroyed by the push
    }
    if (this.head === this.queue.length) {
      this.queue.length = this.head = 0;
      const drained = this.drained;
      this.drained = undefined;
      drained?.();
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    if (this.belowLimit && this.heldBytes < this.options.maxHeld) {
      const resume = this.belowLimit;
      this.belowLimit = undefined;
      resume();
    }
    this.schedule();
  };
}

export function createDelayFilter(options: DelayOptions): Filter {
  return new DelayFilter(options);
}
