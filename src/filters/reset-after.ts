/**
 * `reset_after`: lets `bytes` bytes through (then cuts the chunk there) or runs for `after`
 * ms, whichever comes first, then closes the connection with a TCP reset (reason `filter`):
 * the "connection reset by peer" that a client must survive.
 */
import type { Filter, FilterContext, Push } from './filter.js';

export interface ResetAfterOptions {
  readonly bytes?: number | undefined;
  readonly afterMs?: number | undefined;
}

class ResetAfterFilter implements Filter {
  private remaining: number;
  private tripped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly context: FilterContext,
    options: ResetAfterOptions,
  ) {
    this.remaining = options.bytes ?? Infinity;
    if (options.afterMs !== undefined) this.timer = setTimeout(this.trip, options.afterMs).unref();
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
    this.context.close('filter', { reset: true });
  };
}

export function createResetAfterFilter(context: FilterContext, options: ResetAfterOptions): Filter {
  return new ResetAfterFilter(context, options);
}
