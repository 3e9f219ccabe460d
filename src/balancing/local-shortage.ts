import type { Logger } from 'pino';

/**
 * Connect errors that come from this host running short of a resource, not from the
 * upstream: they say nothing about the endpoint's health, so they must not eject it, fail a
 * health check or count as its connect failure (an EMFILE storm used to take every
 * upstream "down" and refuse all later clients `no_upstream` while the upstreams were fine).
 *
 * - EMFILE: this process is at its descriptor limit (`ulimit -n`, systemd `LimitNOFILE`):
 *   socket() fails before any packet leaves.
 * - ENFILE: the system-wide file table is full (`fs.file-max`): the same, host-wide.
 * - ENOBUFS, ENOMEM: the kernel cannot allocate the socket or its buffers.
 * - EADDRNOTAVAIL: connect() found no free ephemeral port (`net.ipv4.ip_local_port_range`
 *   exhausted, typically by TIME_WAIT under a high connection rate). Linux picks ports per
 *   destination, so another endpoint may still work (the connect is retried there as
 *   usual), but the shortage is ours, not the upstream's: blaming it would only hide the
 *   cause. (The same code for an address this host cannot use at all is also a local
 *   configuration problem, not an upstream outage.)
 *
 * Not in the list, because they are about the path or the peer: ECONNREFUSED, ETIMEDOUT,
 * EHOSTUNREACH, ENETUNREACH, ECONNRESET, and EACCES/EPERM (a firewall rule against that
 * destination makes it as unusable as a dead one).
 */
const SHORTAGES: ReadonlyMap<string, string> = new Map([
  ['EMFILE', 'out of file descriptors (the process limit: ulimit -n, LimitNOFILE)'],
  ['ENFILE', 'out of file descriptors (the system-wide limit: fs.file-max)'],
  ['ENOBUFS', 'out of kernel buffer space for sockets'],
  ['ENOMEM', 'out of kernel memory for sockets'],
  ['EADDRNOTAVAIL', 'out of local ports (net.ipv4.ip_local_port_range) or a local address unusable'],
]);

/** What this host ran short of, when `code` is such an error; undefined for anything else. */
export function localShortage(code: string | undefined): string | undefined {
  return code === undefined ? undefined : SHORTAGES.get(code);
}

/**
 * Warnings about a shortage, at most one per error code per interval (per process: the
 * limits are the process's, and during a shortage every connection would log one, adding
 * load exactly when the proxy has none to spare). The next warning says how many were left out.
 */
export class ShortageWarnings {
  private readonly lastWarned = new Map<string, number>();
  private readonly suppressed = new Map<string, number>();

  constructor(
    private readonly intervalMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  /** `fields` name where it happened (listener, upstream, `during`); `event` defaults to `resource_shortage`. */
  warn(logger: Logger, code: string, fields: Record<string, unknown>, consequence: string): void {
    const now = this.now();
    const last = this.lastWarned.get(code);
    if (last !== undefined && now - last < this.intervalMs) {
      this.suppressed.set(code, (this.suppressed.get(code) ?? 0) + 1);
      return;
    }
    this.lastWarned.set(code, now);
    const suppressed = this.suppressed.get(code) ?? 0;
    this.suppressed.delete(code);
    logger.warn({ event: 'resource_shortage', error: code, ...fields, suppressed }, `${localShortage(code) ?? code} (${code}): ${consequence}`);
  }
}

/** The process's one rate limit for these warnings. */
export const shortageWarnings = new ShortageWarnings();
