/**
 * `slow_close` (toxiproxy's toxic): data passes untouched; the end of the stream (the FIN)
 * is passed on `delayMs` later.
 */
import type { Filter, Push } from './filter.js';

class SlowCloseFilter implements Filter {
  private timer: NodeJS.Timeout | undefined;
  private release: (() => void) | undefined;

  constructor(private readonly delayMs: number) {}

  data(chunk: Buffer, push: Push): void {
    push(chunk);
  }

  end(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.release = resolve;
      this.timer = setTimeout(resolve, this.delayMs).unref();
    });
  }

  /** Removed at run time while the FIN waits: it goes now. */
  flush(): void {
    const release = this.release;
    this.destroy();
    release?.();
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = this.release = undefined;
  }
}

export function createSlowCloseFilter(delayMs: number): Filter {
  return new SlowCloseFilter(delayMs);
}
