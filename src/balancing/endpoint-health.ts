/**
 * What decides whether a pool's endpoints are reachable: active health checks when the
 * plan has them, otherwise passive detection (a failed connect ejects the endpoint for a
 * back-off that doubles with each failure in a row). One watcher per member at most: a
 * HealthCheck or a back-off timer. The verdict lives in `endpoint.reachable`; the pool,
 * told through `changed`, derives the state, counts and notifies.
 */
import type { Logger } from 'pino';
import type { Endpoint } from './endpoint.js';
import { HealthCheck, type HealthCheckOptions } from './health-check.js';
import { shortageWarnings } from './local-shortage.js';

export interface EndpointHealthOptions {
  listener: string;
  logger: Logger;
  /** Passive ejection back-off: baseMs, doubled on each failure in a row, up to maxMs. */
  backoff: { baseMs: number; maxMs: number };
  /** Randomness of the health-check jitter. */
  random: () => number;
  /** An endpoint's `reachable` may have changed: `reason` and `detail` say why (for the log). */
  changed: (endpoint: Endpoint, reason: string, detail?: string) => void;
}

export class EndpointHealth {
  private checkOptions: HealthCheckOptions | undefined;
  private readonly checks = new Map<Endpoint, HealthCheck>();
  private readonly retryTimers = new Map<Endpoint, NodeJS.Timeout>();

  constructor(private readonly options: EndpointHealthOptions) {}

  /** A new plan's checks; true when they differ from the running ones (every member must be watched anew). */
  configure(checks: HealthCheckOptions | undefined): boolean {
    const changed = !sameChecks(this.checkOptions, checks);
    this.checkOptions = checks;
    return changed;
  }

  /**
   * A connect to a member was refused or timed out. Either way it gets no new connections:
   * without active checks a back-off timer brings it back; with them, the next passing check
   * does (the contract's rule).
   */
  connectFailed(endpoint: Endpoint, error: Error): void {
    // Connects already in flight when it was taken out fail too: one back-off, not several.
    if (!endpoint.reachable) return;
    endpoint.reachable = false;
    if (this.checkOptions !== undefined) {
      this.options.changed(endpoint, 'connect_failed', `${error.message}; until a health check passes`);
      return;
    }
    endpoint.ejections++;
    const { baseMs, maxMs } = this.options.backoff;
    const delayMs = Math.min(baseMs * 2 ** (endpoint.ejections - 1), maxMs);
    endpoint.retryAt = Date.now() + delayMs;
    this.options.changed(endpoint, 'connect_failed', `${error.message}; retry in ${delayMs} ms`);
    this.scheduleRetry(endpoint, delayMs);
  }

  /** Starts what decides a member's health: its checks, or its pending back-off. */
  watch(endpoint: Endpoint): void {
    this.unwatch(endpoint); // never two checks or back-off timers for one endpoint
    if (this.checkOptions !== undefined) {
      endpoint.retryAt = 0;
      const check = new HealthCheck(endpoint, this.checkOptions, this.onVerdict, this.options.random, this.onCheckShortage);
      this.checks.set(endpoint, check);
      check.start();
    } else if (!endpoint.reachable) {
      // Down when (re)joining, or when checks had it down: resume its back-off, or give it one.
      const remaining = endpoint.retryAt > 0 ? endpoint.retryAt - Date.now() : this.options.backoff.baseMs;
      this.scheduleRetry(endpoint, Math.max(0, remaining));
    }
  }

  unwatch(endpoint: Endpoint): void {
    this.checks.get(endpoint)?.stop();
    this.checks.delete(endpoint);
    clearTimeout(this.retryTimers.get(endpoint));
    this.retryTimers.delete(endpoint);
  }

  /** Stops every check and timer. */
  close(): void {
    for (const endpoint of [...this.checks.keys(), ...this.retryTimers.keys()]) this.unwatch(endpoint);
  }

  private scheduleRetry(endpoint: Endpoint, delayMs: number): void {
    const timer = setTimeout(() => {
      this.retryTimers.delete(endpoint);
      endpoint.retryAt = 0;
      endpoint.reachable = true;
      this.options.changed(endpoint, 'backoff_expired');
    }, delayMs);
    timer.unref();
    this.retryTimers.set(endpoint, timer);
  }

  private readonly onVerdict = (endpoint: Endpoint, reachable: boolean, detail: string): void => {
    endpoint.reachable = reachable;
    this.options.changed(endpoint, reachable ? 'health_check_passed' : 'health_check_failed', detail);
  };

  /** A health check this host could not run (out of descriptors...): neither a pass nor a failure. */
  private readonly onCheckShortage = (endpoint: Endpoint, code: string): void => {
    shortageWarnings.warn(
      this.options.logger,
      code,
      { listener: this.options.listener, upstream: endpoint.label, during: 'health_check' },
      'health check skipped; the upstream keeps its state',
    );
  };
}

/** Whether two plans check alike (then the running checks, and their counts in a row, go on). */
function sameChecks(a: HealthCheckOptions | undefined, b: HealthCheckOptions | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.intervalMs === b.intervalMs &&
    a.timeoutMs === b.timeoutMs &&
    a.healthyThreshold === b.healthyThreshold &&
    a.unhealthyThreshold === b.unhealthyThreshold &&
    sameBytes(a.send, b.send) &&
    sameExpectation(a.expect, b.expect) &&
    sameBytes(a.preamble?.(), b.preamble?.())
  );
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined || b === undefined ? a === b : a.equals(b);
}

function sameExpectation(a: Buffer | RegExp | undefined, b: Buffer | RegExp | undefined): boolean {
  if (a instanceof RegExp || b instanceof RegExp) return a instanceof RegExp && b instanceof RegExp && a.source === b.source && a.flags === b.flags;
  return sameBytes(a, b);
}
