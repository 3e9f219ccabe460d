/**
 * The clients waiting for a connection slot (`on_limit: queue`). Part of a listener's
 * long-lived state, with the ConnectionLimits it waits on: a reload keeps every waiter in
 * line, in order and with its deadline, whatever the new config says (its `max_queue`
 * applies to those who queue from then on).
 *
 * Queue order: on every release, the first waiter (FIFO) that fits takes the slot,
 * synchronously, so nobody can take it in between. A waiter held back by its own per-IP
 * limit does not block waiters from other addresses behind it. Finding that waiter scans
 * at most `maxSize` entries.
 */
import { REFUSED, type AdmissionResult } from './admission.js';
import type { ConnectionLimits, Slot } from './limits.js';
import { WaitQueue } from './wait-queue.js';

interface Waiter {
  ip: string;
  done: (result: AdmissionResult) => void;
}

function refuseOnTimeout(waiter: Waiter): void {
  waiter.done(REFUSED.queue_timeout);
}

export class AdmissionQueue {
  readonly #limits: ConnectionLimits;
  readonly #queue: WaitQueue<Waiter>;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(limits: ConnectionLimits, options: { maxSize: number }) {
    this.#limits = limits;
    this.#queue = new WaitQueue({ maxSize: options.maxSize });
    this.#unsubscribe = limits.onRelease(this.#serveWaiters);
  }

  /** `max_queue`: most waiters at once; lowering it drops nobody already waiting. */
  set maxSize(maxSize: number) {
    this.#queue.maxSize = maxSize;
  }

  get full(): boolean {
    return this.#queue.full;
  }

  get length(): number {
    return this.#queue.length;
  }

  /** Closed for good (shutdown, listener removed): nobody is admitted any more. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues a client (`ip` canonical) for up to `timeoutMs`. `done` runs exactly once: admitted
   * with a slot, or refused ('queue_timeout', 'shutdown', or 'limit' if the queue is full); it
   * runs before wait() returns when the answer is immediate (room already free, queue full,
   * closed). The returned function withdraws the client (it left): `done` then never runs.
   */
  wait(ip: string, timeoutMs: number, done: (result: AdmissionResult) => void): () => void {
    if (this.#closed) {
      done(REFUSED.shutdown);
      return noop;
    }
    const slot = this.#limits.tryAcquire(ip);
    if (slot !== 'limit') {
      done({ admitted: true, slot });
      return noop;
    }
    const ticket = this.#queue.enqueue({ ip, done }, timeoutMs, refuseOnTimeout);
    if (ticket === undefined) {
      done(REFUSED.limit);
      return noop;
    }
    return () => void ticket.cancel();
  }

  /** Every waiter is refused 'shutdown' (its timer cleared), and nobody is queued any more. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe();
    for (let waiter = this.#queue.shift(); waiter !== undefined; waiter = this.#queue.shift()) waiter.done(REFUSED.shutdown);
  }

  /** Hands freed slots to the first waiters that fit, in queue order. */
  readonly #serveWaiters = (): void => {
    const limits = this.#limits;
    while (!limits.full && this.#queue.length > 0) {
      const waiter = this.#queue.removeFirst(this.#fits);
      if (waiter === undefined) return;
      // Cannot be 'limit': canAcquire just said yes and nothing ran in between.
      const slot = limits.tryAcquire(waiter.ip) as Slot;
      waiter.done({ admitted: true, slot });
    }
  };

  readonly #fits = (waiter: Waiter): boolean => this.#limits.canAcquire(waiter.ip);
}

function noop(): void {
  // nothing to withdraw: the answer was given at once
}
