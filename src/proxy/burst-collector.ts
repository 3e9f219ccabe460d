/**
 * The burst collector: one full garbage collection once a burst of connections is over.
 *
 * A connection's JavaScript objects live long enough to reach V8's old generation. When
 * thousands close together, their memory is garbage that only a full collection frees, and
 * the plain path allocates next to nothing afterwards: V8 sees no reason to collect, and the
 * process keeps the burst's memory for as long as it runs (~14 MB after 5,000 idle
 * connections in `../shared/bench`, on top of the 58 MB a fresh proxy has). So once the
 * count of open connections, after reaching `burst` or more, falls below an eighth of its
 * peak and stays there for `delayMs`, this runs one full collection: at a quiet moment by
 * construction, and once per burst (the peak starts again from the count left). The pause
 * (25-35 ms after 5,000 connections) is paid when few connections are left to feel it.
 *
 * `TCPPROXY_COLLECT_AFTER_BURST=N` sets `burst` (default 1,000); 0 turns this off.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

export const DEFAULT_BURST = 1_000;
export const QUIET_DELAY_MS = 1_000;

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
  /** Collections run (for tests and the architecture notes). */
  collections = 0;

  constructor(private readonly options: BurstCollectorOptions) {}

  opened(): void {
    if (++this.open > this.peak) this.peak = this.open;
  }

  closed(): void {
    this.open--;
    if (this.timer === undefined && this.isQuietAfterBurst()) {
      // Unref'd: it must not keep a stopping process alive.
      this.timer = setTimeout(this.collectIfStillQuiet, this.options.delayMs).unref();
    }
  }

  private isQuietAfterBurst(): boolean {
    const { burst } = this.options;
    return burst > 0 && this.peak >= burst && this.open * 8 < this.peak;
  }

  private readonly collectIfStillQuiet = (): void => {
    this.timer = undefined;
    if (!this.isQuietAfterBurst()) return;
    this.peak = this.open;
    this.collections++;
    this.options.collect();
  };
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
export const burstCollector = new BurstCollector({ burst: burstFromEnvironment() ?? DEFAULT_BURST, delayMs: QUIET_DELAY_MS, collect: collectGarbage });
