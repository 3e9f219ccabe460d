/**
 * `timeout` (toxiproxy's toxic): nothing gets through. The first chunk is held and the
 * chain stops reading (the sender is held back by TCP backpressure, nothing piles up here);
 * with `closeAfterMs` > 0 the connection is closed that long after the filter was set up,
 * with 0 it stays open. Removed at run time, the held chunk goes on and data flows again.
 */
import type { Filter, FilterContext, Push } from './filter.js';

class HoldFilter implements Filter {
  private held: Buffer | undefined;
  private release: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(context: FilterContext, closeAfterMs: number) {
    if (closeAfterMs > 0) this.timer = setTimeout(() => context.close('filter'), closeAfterMs).unref();
  }

  data(chunk: Buffer): Promise<void> {
    this.held = chunk;
    return new Promise<void>((resolve) => {
      this.release = resolve;
    });
  }

  flush(push: Push): void {
    const { held, release } = this;
    if (held !== undefined) push(held);
    this.destroy();
    release?.();
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = this.held = this.release = undefined;
  }
}

export function createHoldFilter(context: FilterContext, closeAfterMs: number): Filter {
  return new HoldFilter(context, closeAfterMs);
}
