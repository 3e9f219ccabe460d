/**
 * `on_limit: queue` for upstream capacity: connections that found every eligible upstream
 * at its `max_connections` wait here, in FIFO order, instead of being refused `limit`.
 *
 * One queue per pool (the listener's, or an SNI route's), as long-lived as the pool: reloads
 * keep it and its waiters, whatever they change. It is subscribed to the pool's
 * capacity signal only while someone waits: one listener per queue, never one per
 * connection. When capacity may have freed, the waiters at the front try again in order;
 * the first that still finds no room stops the round (first come, first served).
 */
import { WaitQueue, type Ticket } from '../admission/wait-queue.js';
import type { UpstreamPool } from './upstream-pool.js';

export interface UpstreamWaiter {
  /**
   * Capacity may have freed: pick again. false = still no room (it stays at the front);
   * true = it is on its way (connecting, or refused for another reason) and has left the
   * queue (cancelled its ticket) before returning.
   */
  retryFromQueue(): boolean;
  /** Left the queue without a slot: `queue_timeout`, or `shutdown` when the queue closed. */
  refusedFromQueue(reason: 'queue_timeout' | 'shutdown'): void;
}

export interface UpstreamQueueOptions {
  /** `max_queue`: most waiters at once; beyond it a connection is refused `limit`. */
  maxSize: number;
  /** `queue_timeout`: longest wait. */
  timeoutMs: number;
}

export class UpstreamQueue {
  private readonly waiters: WaitQueue<UpstreamWaiter>;
  private timeoutMs: number;
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly pool: UpstreamPool,
    options: UpstreamQueueOptions,
  ) {
    this.waiters = new WaitQueue({ maxSize: options.maxSize });
    this.timeoutMs = options.timeoutMs;
  }

  /** Queues `waiter`; undefined when the queue is full or closed (refuse it `limit`). */
  wait(waiter: UpstreamWaiter): Ticket | undefined {
    if (this.closed) return undefined;
    const ticket = this.waiters.enqueue(waiter, this.timeoutMs, this.onTimeout);
    if (ticket) this.unsubscribe ??= this.pool.onRelease(this.serveWaiters);
    return ticket && { cancel: () => this.leave(ticket) };
  }

  get length(): number {
    return this.waiters.length;
  }

  /** A reload's limits, for those who queue from now on (waiters keep their deadlines). */
  reconfigure(options: UpstreamQueueOptions): void {
    this.waiters.maxSize = options.maxSize;
    this.timeoutMs = options.timeoutMs;
  }

  /** Shutdown: every waiter is refused `shutdown`, and nobody is queued any more. */
  close(): void {
    this.closed = true;
    for (let waiter = this.waiters.shift(); waiter !== undefined; waiter = this.waiters.shift()) {
      waiter.refusedFromQueue('shutdown');
    }
    this.stopListeningWhenEmpty();
  }

  private readonly serveWaiters = (): void => {
    for (let head = this.waiters.peek(); head !== undefined; head = this.waiters.peek()) {
      if (!head.retryFromQueue()) return;
    }
    this.stopListeningWhenEmpty();
  };

  private readonly onTimeout = (waiter: UpstreamWaiter): void => {
    this.stopListeningWhenEmpty();
    waiter.refusedFromQueue('queue_timeout');
  };

  private leave(ticket: Ticket): boolean {
    const left = ticket.cancel();
    this.stopListeningWhenEmpty();
    return left;
  }

  private stopListeningWhenEmpty(): void {
    if (this.waiters.length > 0 || this.unsubscribe === undefined) return;
    this.unsubscribe();
    this.unsubscribe = undefined;
  }
}
