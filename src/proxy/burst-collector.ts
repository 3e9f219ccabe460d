/**
 * The burst collector: one full garbage collection once a burst of connections is over.
 *
 * A connection's JavaScript objects live long enough to reach V8's old generation. When
 * thousands close together, their memory is garbage that only a full collection frees, and
 * the plain path allocates next to nothing afterwards: V8 sees no reason to collect, and the
 * process keeps the burst's memory for as long as it runs (~14 MB after 5,000 idle
 * connections in `../shared/bench`, on top of the 58 MB a fresh proxy has). So once the
 * count of open connections, after reaching `burst` or more, has stayed below an eighth of
 * its peak for `delayMs`, this runs one full collection: at a quiet moment by construction,
 * and once per burst (the peak starts again from the count left). The pause (25-35 ms after
 * 5,000 connections) is paid when few connections are left to feel it; each collection is
 * logged (`event: burst_collected`).
 *
 * `TCPPROXY_COLLECT_AFTER_BURST=N` sets `burst` (default 1,000); 0 turns this off.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Logger } from 'pino';

export const DEFAULT_BURST = 1_000;

export interface BurstCollectorOptions {
  /** Open connections that make a burst; 0: never collect. */
  readonly burst: number;
  readonly delayMs: number;
  /** Runs one full garbage collection. */
  readonly collect: () => void;
}

export class BurstCollector {
  private open = 0;
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Set when a collection failed: the collector stays off from then on. */
  private failed = false;
  private logger: Logger | undefined;

  constructor(private readonly options: BurstCollectorOptions) {}

  /** Where collections (and a failure to collect) are logged: the runtime's logger. */
  reportTo(logger: Logger): void {
    this.logger = logger;
  }

  opened(): void {
    if (++this.open > this.peak) this.peak = this.open;
    // The load came back within the quiet second: wait for the next fall.
    if (this.timer !== undefined && !this.isQuietAfterBurst()) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  closed(): void {
    this.open--;
    if (this.timer === undefined && this.isQuietAfterBurst()) {
      // Unref'd: it must not keep a stopping process alive.
      this.timer = setTimeout(this.collectAfterQuietSecond, this.options.delayMs).unref();
    }
  }

  private isQuietAfterBurst(): boolean {
    const { burst } = this.options;
    return !this.failed && burst > 0 && this.peak >= burst && this.open * 8 < this.peak;
  }

  private readonly collectAfterQuietSecond = (): void => {
    this.timer = undefined;
    const peak = this.peak;
    this.peak = this.open;
    const heapBefore = v8.getHeapStatistics().used_heap_size;
    const startedAt = performance.now();
    try {
      this.options.collect();
    } catch (error) {
      // A Node whose contexts lend no `gc` must not lose a proxy carrying traffic over it.
      this.failed = true;
      this.logger?.warn({ event: 'burst_collected', ok: false, error: (error as Error).message }, 'cannot collect garbage after a burst; not trying again');
      return;
    }
    this.logger?.info(
      {
        event: 'burst_collected',
        peak,
        open: this.open,
        pause_ms: round(performance.now() - startedAt),
        heap_before_mb: round(heapBefore / 1048576),
        heap_after_mb: round(v8.getHeapStatistics().used_heap_size / 1048576),
        rss_mb: round(process.memoryUsage.rss() / 1048576),
      },
      'collected the garbage of a burst of connections',
    );
  };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * A full collection without starting node with --expose-gc: the flag set at run time puts a
 * `gc` function in contexts created from then on (V8 reads it when it builds a context), so a
 * throwaway context lends it. An operator's own --expose-gc is used as is.
 */
export function collectGarbage(): void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed();
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

/**
 * TCPPROXY_COLLECT_AFTER_BURST: the burst size (a count of connections; 0 off), the default
 * when unset, undefined when it is not a whole number (the CLI refuses to start: exit 2).
 */
export function burstFromEnvironment(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const value = env.TCPPROXY_COLLECT_AFTER_BURST;
  if (value === undefined || value === '') return DEFAULT_BURST;
  return /^\d+$/.test(value) ? Number(value) : undefined;
}

/** The process's collector: every Bridge reports its opening and its end. */
export const burstCollector = new BurstCollector({ burst: burstFromEnvironment() ?? DEFAULT_BURST, delayMs: 1_000, collect: collectGarbage });
