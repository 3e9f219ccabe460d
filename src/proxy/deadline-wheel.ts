/**
 * One coarse, process-wide timer for every connection's deadlines (max_lifetime, a schedule
 * window's end, the raw sockets' inactivity timeouts), instead of one Node timer each.
 *
 * Deadlines are kept in buckets of RESOLUTION_MS; one unref'd timer fires per bucket while
 * anything is registered, and is not armed at all otherwise. A deadline fires at most one
 * resolution late (more when the event loop is busy), never before its time. `now` is the time of the last tick (or of the last
 * registration): a coarse clock the raw sockets stamp their activity with at no cost.
 */

/** What the wheel calls back: the owner keeps the registration (`wheelTick`) for the wheel. */
export interface Deadline {
  /** The wheel's own bookkeeping: the tick whose bucket holds this deadline, if registered. */
  wheelTick: number | undefined;
  deadlineReached(): void;
}

export const RESOLUTION_MS = 20;

export class DeadlineWheel {
  /** Buckets by tick number (a time divided by the resolution). */
  private readonly buckets = new Map<number, Set<Deadline>>();
  private timer: NodeJS.Timeout | undefined;
  /** The last tick processed. */
  private tick = 0;
  /** Coarse current time (ms since the epoch): refreshed on every tick and registration. */
  now = Date.now();

  constructor(private readonly resolutionMs: number = RESOLUTION_MS) {}

  /** Registers (or moves) `item` to fire at `at` (ms since the epoch). */
  schedule(item: Deadline, at: number): void {
    this.cancel(item);
    if (this.timer === undefined) {
      this.now = Date.now();
      this.tick = Math.floor(this.now / this.resolutionMs);
    }
    // Never early: the bucket whose tick is at or after the deadline, and after the current one.
    const tick = Math.max(Math.ceil(at / this.resolutionMs), this.tick + 1);
    let bucket = this.buckets.get(tick);
    if (bucket === undefined) this.buckets.set(tick, (bucket = new Set()));
    bucket.add(item);
    item.wheelTick = tick;
    this.timer ??= setTimeout(this.onTick, this.resolutionMs).unref();
  }

  cancel(item: Deadline): void {
    const tick = item.wheelTick;
    if (tick === undefined) return;
    const bucket = this.buckets.get(tick);
    item.wheelTick = undefined;
    if (bucket === undefined) return;
    bucket.delete(item);
    // An empty bucket would keep the timer running until its tick.
    if (bucket.size === 0) this.buckets.delete(tick);
  }

  /** Registered deadlines (tests: nothing left after teardown). */
  get size(): number {
    let size = 0;
    for (const bucket of this.buckets.values()) size += bucket.size;
    return size;
  }

  get armed(): boolean {
    return this.timer !== undefined;
  }

  private readonly onTick = (): void => {
    this.timer = undefined;
    this.now = Date.now();
    const current = Math.floor(this.now / this.resolutionMs);
    const from = this.tick + 1;
    // First: what a callback schedules lands after this tick, in a bucket still to come.
    this.tick = current;
    // Usually one tick; more when the event loop was busy.
    for (let tick = from; tick <= current; tick++) {
      const bucket = this.buckets.get(tick);
      if (bucket === undefined) continue;
      this.buckets.delete(tick);
      for (const item of bucket) {
        item.wheelTick = undefined;
        item.deadlineReached();
      }
    }
    if (this.buckets.size > 0) this.timer ??= setTimeout(this.onTick, this.resolutionMs).unref();
  };
}

/** The process's wheel, shared by every connection. */
export const deadlineWheel = new DeadlineWheel();
