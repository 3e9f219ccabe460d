/**
 * `reset_after`: lets `bytes` bytes through (then cuts the chunk there) or runs for `after`
 * ms, whichever comes first, then closes the connection with a TCP reset (reason `filter`):
 * the "connection reset by peer" that a client must survive.
 *
 * The toxics reuse it: `limit_data` closes normally (`reset: false`) once its bytes have
 * passed, counting from what an earlier version of it let through (`passed`, kept across
 * an update); `reset_peer` trips on the first chunk (`bytes: 0`) and waits `graceMs`,
 * dropping what arrives meanwhile, before the reset.
 */
import type { Filter, FilterContext, Push } from './filter.js';

export interface ResetAfterOptions {
  readonly bytes?: number | undefined;
  readonly afterMs?: number | undefined;
  /** Once tripped, wait this long (dropping data) before closing; default 0. */
  readonly graceMs?: number | undefined;
  /** A TCP reset (default) or a normal close. */
  readonly reset?: boolean | undefined;
  /** Bytes already let through by the filter this one replaces. */
  readonly passed?: number | undefined;
}

export class ResetAfterFilter implements Filter {
  private remaining: number;
  private tripped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly context: FilterContext,
    private readonly options: ResetAfterOptions,
  ) {
    this.remaining = (options.bytes ?? Infinity) - (options.passed ?? 0);
    if (options.afterMs !== undefined) this.timer = setTimeout(this.trip, options.afterMs).unref();
  }

  /** Bytes let through so far (with those of the filter it replaced). */
  get passed(): number {
    return (this.options.bytes ?? Infinity) - this.remaining;
  }

  data(chunk: Buffer, push: Push): void {
    if (this.tripped) return;
    if (chunk.length < this.remaining) {
      this.remaining -= chunk.length;
      push(chunk);
      return;
    }
    if (this.remaining > 0) push(chunk.subarray(0, this.remaining));
    this.remaining = 0;
    this.trip();
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  private readonly trip = (): void => {
    if (this.tripped) return;
    this.tripped = true;
    this.destroy();
    const grace = this.options.graceMs ?? 0;
    if (grace > 0) this.timer = setTimeout(this.close, grace).unref();
    else this.close();
  };

  private readonly close = (): void => {
    this.context.close('filter', { reset: this.options.reset !== false });
  };
}

export function createResetAfterFilter(context: FilterContext, options: ResetAfterOptions): ResetAfterFilter {
  return new ResetAfterFilter(context, options);
}
