/**
 * Connecting a client to an upstream: ask the pool for an endpoint, connect with a
 * timeout, and on a refusal or timeout try another endpoint (up to `retries` more),
 * reporting each outcome to the pool so that passive failure detection can eject it
 * (the pool blames no endpoint for this host's own shortages, such as EMFILE).
 * The client is not involved: whatever it sends meanwhile waits, unread or buffered in
 * order, so a retry is invisible to it. With `on_limit: queue`, a connection that finds
 * every eligible endpoint at its max_connections waits in the pool's UpstreamQueue.
 *
 * `connectUpstream()` answers with a promise of the connected socket, or a ConnectRefusal
 * (the client is refused, its reason in the access log); the caller's AbortSignal (or the
 * bridge's cheaper ConnectAbort: connect-abort.ts) drops the attempt when the client leaves
 * first (the promise then rejects with the signal's reason).
 */
import net, { isIP, type Socket, type OnReadOpts } from 'node:net';
import tls from 'node:tls';
import type { Endpoint } from '../balancing/endpoint.js';
import type { PickResult, UpstreamPool } from '../balancing/upstream-pool.js';
import type { UpstreamQueue, UpstreamWaiter } from '../balancing/upstream-queue.js';
import type { Ticket } from '../admission/wait-queue.js';
import type { ClientTlsOptions } from '../protocol/tls.js';
import { RawSocket, type PlainSocket } from './raw-socket.js';
import type { TcpHandles } from './tcp-handle.js';
import { TcpProxyError } from '../errors/errors.js';
import type { AbortSignalLike } from './connect-abort.js';
import type { ListenerMetrics } from '../observability/metrics.js';

export interface ConnectOptions {
  readonly pool: UpstreamPool;
  readonly clientIp: string;
  readonly timeoutMs: number;
  readonly retries: number;
  /** The bridge's zero-copy read path for the upstream side (absent when filters run). */
  readonly onread: OnReadOpts | undefined;
  /**
   * Connect on a raw libuv handle (raw-socket.ts) instead of a net.Socket, where the endpoint
   * is an IP address (a host name needs net's DNS lookup): the plain path. Needs `onread`.
   */
  readonly raw: TcpHandles | undefined;
  /** Bytes that must precede everything else on the upstream connection (a PROXY header). */
  readonly preamble: Buffer | undefined;
  /** TLS to the upstream (`upstream_tls`): the handshake is part of connecting (and of its timeout). */
  readonly tls: ClientTlsOptions | undefined;
  /** `on_limit: queue`: where to wait when every eligible endpoint is full. */
  readonly queue: UpstreamQueue | undefined;
  /**
   * Where a failed attempt (refused, timed out) is counted against its endpoint; another may
   * follow. This host's own shortages (EMFILE...: local-shortage.ts) blame no endpoint.
   */
  readonly metrics: Pick<ListenerMetrics, 'connectFailed'>;
}

export interface Connected {
  /** The TCP socket (a RawSocket on the plain path), or the TLS socket over it. */
  readonly socket: PlainSocket;
  readonly endpoint: Endpoint;
  readonly connectMs: number;
}

/** No upstream took the client: it is refused with `reason`; `cause` is the last attempt's error. */
export class ConnectRefusal extends TcpProxyError {
  constructor(
    readonly reason: 'no_upstream' | 'limit' | 'queue_timeout' | 'shutdown',
    readonly failure?: Error,
  ) {
    super(reason === 'no_upstream' ? 'no_upstream' : 'refused', failure?.message ?? `refused: ${reason}`);
  }
}

/** Connects a client to an upstream of `options.pool` (picking, retrying, queueing). */
export function connectUpstream(options: ConnectOptions, signal: AbortSignalLike): Promise<Connected> {
  return new Promise((resolve, reject) => new UpstreamConnector(options, resolve, reject, signal).start());
}

class ConnectTimeoutError extends TcpProxyError {
  constructor(endpoint: Endpoint, ms: number) {
    super('ETIMEDOUT', `connect to ${endpoint.label} timed out after ${ms}ms`);
  }
}

/** One client's attempt(s) to reach an upstream, until it settles the promise or is aborted. */
class UpstreamConnector implements UpstreamWaiter {
  /** Endpoints this connection failed to reach since it last waited (not tried again). */
  private readonly tried = new Set<Endpoint>();
  /** Connect attempts so far: the retry budget counts every one. */
  private attempts = 0;
  /** The TCP socket of the current attempt: it carries the timeout. */
  private raw: PlainSocket | undefined;
  /** What the bridge gets: the TCP socket, or the TLS socket over it. */
  private socket: PlainSocket | undefined;
  private endpoint: Endpoint | undefined;
  private startedAt = 0;
  private lastError: Error | undefined;
  /** Set while waiting in the upstream queue. */
  private ticket: Ticket | undefined;

  constructor(
    private readonly options: ConnectOptions,
    private readonly resolve: (connected: Connected) => void,
    private readonly reject: (error: unknown) => void,
    private readonly signal: AbortSignalLike,
  ) {
    signal.addEventListener('abort', this.abort, { once: true });
  }

  start(): void {
    if (this.attempts > this.options.retries) return this.fail();
    const pick = this.pickEndpoint();
    if (pick.endpoint === undefined && pick.reason === 'limit' && this.options.queue) {
      this.ticket = this.options.queue.wait(this);
      if (this.ticket) {
        // A waiter takes whichever slot frees first, like every other waiter (FIFO stays
        // fair): endpoints that failed it are down now and the pool skips them anyway.
        this.tried.clear();
        return; // the queue calls retryFromQueue, or refusedFromQueue
      }
    }
    this.attempt(pick);
  }

  retryFromQueue(): boolean {
    const pick = this.pickEndpoint();
    if (pick.endpoint === undefined && pick.reason === 'limit') return false;
    this.leaveQueue();
    this.attempt(pick);
    return true;
  }

  refusedFromQueue(reason: 'queue_timeout' | 'shutdown'): void {
    this.ticket = undefined;
    this.refuse(new ConnectRefusal(reason));
  }

  private leaveQueue(): void {
    this.ticket?.cancel();
    this.ticket = undefined;
  }

  private pickEndpoint(): PickResult {
    return this.options.pool.pick(this.options.clientIp, this.tried);
  }

  private attempt(pick: PickResult): void {
    const { pool } = this.options;
    if (pick.endpoint === undefined) {
      // After a failed attempt, "nothing else to try" is an unreachable upstream.
      return this.lastError ? this.fail() : this.refuse(new ConnectRefusal(pick.reason));
    }
    const endpoint = pick.endpoint;
    this.tried.add(endpoint);
    this.attempts++;
    pool.acquire(endpoint);
    this.endpoint = endpoint;
    this.startedAt = performance.now();
    const raw = this.openSocket(endpoint);
    this.raw = raw;
    this.socket = raw;
    raw.setTimeout(this.options.timeoutMs);
    raw.once('timeout', this.onTimeout);
    raw.once('connect', this.onTcpConnected);
    raw.on('error', this.onError);
    if (this.options.preamble) raw.write(this.options.preamble);
  }

  /** Only how the socket is opened differs between the plain path and the others. */
  private openSocket(endpoint: Endpoint): PlainSocket {
    const { raw, onread } = this.options;
    const family = isIP(endpoint.host);
    if (raw !== undefined && onread !== undefined && family !== 0) return RawSocket.connect(raw, endpoint.host, endpoint.port, family === 6);
    return net.connect({
      host: endpoint.host,
      port: endpoint.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(onread ? { onread } : {}),
    });
  }

  /** The client left while connecting: drop the attempt and give the endpoint back. */
  private readonly abort = (): void => {
    this.leaveQueue();
    if (this.socket) {
      this.discard();
      this.options.pool.release(this.endpoint!);
    }
    this.reject(this.signal.reason);
  };

  private refuse(refusal: ConnectRefusal): void {
    this.signal.removeEventListener('abort', this.abort);
    this.reject(refusal);
  }

  private readonly onTcpConnected = (): void => {
    const tlsOptions = this.options.tls;
    if (!tlsOptions) return this.connected();
    // TCP is up (a PROXY header went out in clear first): the handshake is part of connecting.
    // (Never a RawSocket: `raw` is not asked for with TLS.)
    const raw = this.raw as Socket;
    raw.off('error', this.onError);
    raw.on('error', ignoreError);
    const host = this.endpoint!.host;
    const servername = tlsOptions.servername ?? (isIP(host) ? undefined : host);
    const secure = tls.connect({ ...tlsOptions, socket: raw, allowHalfOpen: true, ...(servername !== undefined && { servername }) } as tls.ConnectionOptions);
    this.socket = secure;
    secure.once('secureConnect', this.connected);
    secure.on('error', this.onError);
  };

  private readonly connected = (): void => {
    const socket = this.socket!;
    const endpoint = this.endpoint!;
    this.detach();
    this.raw!.setTimeout(0);
    this.raw = undefined;
    this.socket = undefined;
    if (socket instanceof RawSocket) {
      // net.connect's `onread` starts reading on connect by itself; a raw socket is told to.
      // Node calls onread's callback unbound too: the bridge passes an arrow function.
      // eslint-disable-next-line @typescript-eslint/unbound-method
      const { buffer, callback } = this.options.onread!;
      socket.readInto((typeof buffer === 'function' ? buffer() : buffer) as Buffer, callback);
      socket.resume();
    }
    this.options.pool.reportConnectSuccess(endpoint);
    this.signal.removeEventListener('abort', this.abort);
    this.resolve({ socket, endpoint, connectMs: performance.now() - this.startedAt });
  };

  private readonly onTimeout = (): void => {
    this.retry(new ConnectTimeoutError(this.endpoint!, this.options.timeoutMs));
  };

  private readonly onError = (error: Error): void => {
    this.retry(error);
  };

  private retry(error: Error): void {
    const endpoint = this.endpoint!;
    this.discard();
    this.lastError = error;
    // Failure first: the release may hand the slot to a waiter, which must not get this endpoint.
    const blamed = this.options.pool.reportConnectFailure(endpoint, error);
    this.options.pool.release(endpoint);
    if (blamed) this.options.metrics.connectFailed(endpoint.label);
    this.start();
  }

  private fail(): void {
    this.refuse(new ConnectRefusal('no_upstream', this.lastError ?? new TcpProxyError('no_upstream', 'no upstream left to try')));
  }

  /** Ends the current attempt's sockets and forgets them. */
  private discard(): void {
    const socket = this.socket!;
    this.detach();
    socket.on('error', ignoreError);
    socket.destroy();
    this.raw!.destroy();
    this.raw = undefined;
    this.socket = undefined;
  }

  private detach(): void {
    const raw = this.raw!;
    raw.off('timeout', this.onTimeout);
    raw.off('connect', this.onTcpConnected);
    raw.off('error', this.onError);
    this.socket!.off('error', this.onError);
    if (this.socket !== raw) (this.socket as Socket).off('secureConnect', this.connected);
  }
}

function ignoreError(): void {
  // deliberately nothing
}
