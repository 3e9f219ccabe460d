/**
 * The inactivity timeouts of one bridged connection, each side on its own socket's timer.
 *
 *   idle_timeout    no byte in either direction (watched on the client socket: every byte
 *                   the proxy moves is read from it or written to it).
 *   client_timeout  the client side inactive while the client owes something (HAProxy's
 *                   `timeout client`): nothing received from it and nothing sent to it taken
 *                   by it, counted while it is expected to send (it has not sent FIN, and
 *                   what it sent was taken by the upstream) or to acknowledge (bytes for it
 *                   are waiting). As in HAProxy without `option independent-streams`, bytes
 *                   sent to a side also count as that side's activity.
 *   server_timeout  the same for the upstream side (HAProxy's `timeout server`).
 *
 * Whose fault a stall is decides the reason: a client that stops reading makes the proxy stop
 * reading the upstream too, but then only the client owes (bytes wait for it), so the close
 * is `client_timeout`, never `server_timeout`; likewise the other way round.
 *
 * Cost: nothing per chunk. Node refreshes a socket's timer itself on every read and write
 * (inside its stream machinery, as for the plain idle timeout); a raw socket (raw-socket.ts)
 * stamps its activity with the deadline wheel's coarse clock, and its timer is a wheel entry. Only when a timer fires does
 * this code run: it tells how long the side has been inactive (the socket's byte counters
 * show whether anything moved since the previous firing), whether the side owes anything,
 * and either closes or re-arms for the nearest limit. A side that owes nothing when its
 * timer fires is given a new full period once it owes again: the close may come up to one
 * period late after such a pause, never early.
 */
import type { PlainSocket } from './raw-socket.js';
import type { CloseReason } from '../observability/reasons.js';

export interface SideTimeoutSettings {
  idle_timeout: number;
  client_timeout: number;
  server_timeout: number;
}

type Expire = (reason: CloseReason) => void;

const MAX_TIMER_MS = 2 ** 31 - 1;

/** Watches both sides; stop() before the sockets are let go. */
export class SideTimeouts {
  private readonly watches: SideWatch[] = [];

  constructor(settings: SideTimeoutSettings, client: PlainSocket, upstream: PlainSocket, expire: Expire) {
    if (settings.idle_timeout > 0 || settings.client_timeout > 0) {
      this.watches.push(new SideWatch(client, upstream, settings.idle_timeout, settings.client_timeout, 'client_timeout', expire));
    }
    if (settings.server_timeout > 0) this.watches.push(new SideWatch(upstream, client, 0, settings.server_timeout, 'server_timeout', expire));
  }

  stop(): void {
    for (const watch of this.watches) watch.stop();
  }
}

class SideWatch {
  /** The timer's current duration: inactivity since the later of the last activity and the last firing. */
  private period = 0;
  /** Bytes read from and taken by the side, as of the last firing (or the start). */
  private mark: number;
  /** Inactivity so far, and the part of it during which the side owed something. */
  private quietMs = 0;
  private owedMs = 0;
  private owedAtLastFiring = true;

  constructor(
    private readonly side: PlainSocket,
    private readonly other: PlainSocket,
    /** 0: not watched on this side. */
    private readonly idleMs: number,
    private readonly sideMs: number,
    private readonly sideReason: CloseReason,
    private readonly expire: Expire,
  ) {
    this.mark = activityMark(side);
    side.on('timeout', this.onTimeout);
    this.arm(Math.min(positiveOr(idleMs), positiveOr(sideMs)));
  }

  stop(): void {
    this.side.setTimeout(0);
    this.side.off('timeout', this.onTimeout);
  }

  private arm(ms: number): void {
    // Node's timers take at most 2^31-1 ms (about 24.8 days); a longer limit is reached in steps.
    this.period = Math.min(ms, MAX_TIMER_MS);
    this.side.setTimeout(this.period);
  }

  private readonly onTimeout = (): void => {
    const mark = activityMark(this.side);
    // Nothing moved since the last firing: this period continues the same silence.
    const continued = mark === this.mark;
    this.mark = mark;
    this.quietMs = (continued ? this.quietMs : 0) + this.period;
    const owes = owesSomething(this.side, this.other);
    // A period counts towards the side's own timeout only if the side owed at both its ends
    // (after activity, from the activity on): an excuse that ended mid-period is not held against it.
    if (!owes) this.owedMs = 0;
    else if (!continued) this.owedMs = this.period;
    else this.owedMs = this.owedAtLastFiring ? this.owedMs + this.period : 0;
    this.owedAtLastFiring = owes;
    if (this.sideMs > 0 && this.owedMs >= this.sideMs) return this.expire(this.sideReason);
    if (this.idleMs > 0 && this.quietMs >= this.idleMs) return this.expire('idle_timeout');
    const untilIdle = this.idleMs > 0 ? this.idleMs - this.quietMs : Infinity;
    const untilSide = this.sideMs > 0 ? this.sideMs - this.owedMs : Infinity;
    // The timer does not restart by itself after firing: arm it for the nearest limit.
    this.arm(Math.min(untilIdle, untilSide));
  };
}

/**
 * Grows with every byte read from the socket and every byte it took (a write completed).
 * bytesWritten counts bytes handed to the socket; writableLength those not yet taken.
 */
function activityMark(socket: PlainSocket): number {
  return socket.bytesRead + (socket.bytesWritten ?? 0) - socket.writableLength;
}

/**
 * A side owes an acknowledgement while bytes for it wait, and data while the proxy reads from
 * it: until its FIN, and unless what it sent still waits to be taken by the other side.
 */
function owesSomething(side: PlainSocket, other: PlainSocket): boolean {
  if (side.writableLength > 0) return true;
  if (side.readableEnded) return false;
  return other.writableLength === 0;
}

function positiveOr(ms: number): number {
  return ms > 0 ? ms : Infinity;
}
