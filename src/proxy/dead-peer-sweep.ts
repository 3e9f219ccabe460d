/**
 * The dead-peer sweep: one coarse timer per process that probes the sockets nobody polls.
 *
 * libuv polls a socket only while it reads or has a write pending. A socket of ours is in
 * neither state when its direction is paused for backpressure (the other side's write is
 * pending), while a client waits in a queue or for its upstream connection, while a filter
 * holds its direction, or once its peer's FIN has been read: a reset from that peer would
 * go unseen until idle_timeout, holding slots and descriptors. The owners of such sockets
 * (a Bridge, a queued client) register here when they enter such a state, and every
 * SWEEP_INTERVAL_MS the sweep asks each of them to probe its sockets (peer-probe.ts: one
 * getpeername(2) each, no byte read or written). An owner answers whether it still needs
 * watching, so leaving a state costs nothing on the data path: the next sweep drops it.
 * With nothing registered the timer is not armed at all.
 */

/** What the sweep watches: usually a connection, which probes its own unpolled sockets. */
export interface Watched {
  /** Looks for a dead peer, ending what it owns if it finds one; false: stop watching. */
  probe(): boolean;
}

/** Well under a second, so that a dead peer is noticed within one. */
export const SWEEP_INTERVAL_MS = 400;

export class DeadPeerSweep {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly intervalMs: number = SWEEP_INTERVAL_MS) {}

  watch(item: Watched): void {
    this.watched.add(item);
    this.timer ??= this.arm();
  }

  unwatch(item: Watched): void {
    this.watched.delete(item);
  }

  /** Items registered (for tests and the chaos test's "everything back to zero"). */
  get size(): number {
    return this.watched.size;
  }

  get armed(): boolean {
    return this.timer !== undefined;
  }

  private arm(): NodeJS.Timeout {
    // Unref'd: the sockets keep the process alive while they matter, the sweep must not.
    return setTimeout(this.sweep, this.intervalMs).unref();
  }

  private readonly sweep = (): void => {
    this.timer = undefined;
    for (const item of this.watched) {
      if (!item.probe()) this.watched.delete(item);
    }
    if (this.watched.size > 0) this.timer = this.arm();
  };
}

/** The process's sweep, shared by every listener's connections. */
export const deadPeerSweep = new DeadPeerSweep();
