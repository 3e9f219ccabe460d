/**
 * Connecting a client to an upstream: ask the pool for an endpoint, connect with a
 * timeout, and on a refusal or timeout try another endpoint (up to `retries` more),
 * reporting each outcome to the pool so that passive failure detection can eject it.
 * The client is not involved: whatever it sends meanwhile stays in its socket (it is
 * paused), so a retry is invisible to it.
 */
import net, { type Socket, type OnReadOpts } from 'node:net';
import type { Endpoint } from '../balancing/endpoint.js';
import type { UpstreamPool } from '../balancing/upstream-pool.js';

export interface ConnectOptions {
  readonly pool: UpstreamPool;
  readonly clientIp: string;
  readonly timeoutMs: number;
  readonly retries: number;
  /** The bridge's zero-copy read path for the upstream side (absent when filters run). */
  readonly onread: OnReadOpts | undefined;
  /** Bytes that must precede everything else on the upstream connection (a PROXY header). */
  readonly preamble: Buffer | undefined;
}

export type ConnectFailure =
  | { readonly reason: 'no_upstream' | 'limit'; readonly error?: undefined }
  | { readonly reason: 'no_upstream'; readonly error: Error };

export interface ConnectHandlers {
  connected(socket: Socket, endpoint: Endpoint, connectMs: number): void;
  failed(failure: ConnectFailure): void;
  /** One attempt failed (refused, timed out); another may follow. */
  attemptFailed(endpoint: Endpoint, error: Error): void;
}

class ConnectTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(endpoint: Endpoint, ms: number) {
    super(`connect to ${endpoint.label} timed out after ${ms}ms`);
  }
}

/** One client's attempt(s) to reach an upstream. `abort()` when the client goes away. */
export class UpstreamConnector {
  private readonly tried = new Set<Endpoint>();
  private socket: Socket | undefined;
  private endpoint: Endpoint | undefined;
  private startedAt = 0;
  private lastError: Error | undefined;

  constructor(
    private readonly options: ConnectOptions,
    private readonly handlers: ConnectHandlers,
  ) {}

  start(): void {
    const { pool, clientIp } = this.options;
    if (this.tried.size > this.options.retries) return this.fail();
    const pick = pool.pick(clientIp, this.tried);
    if (pick.endpoint === undefined) {
      // After a failed attempt, "nothing else to try" is an unreachable upstream.
      return this.lastError ? this.fail() : this.handlers.failed({ reason: pick.reason });
    }
    const endpoint = pick.endpoint;
    this.tried.add(endpoint);
    pool.acquire(endpoint);
    this.endpoint = endpoint;
    this.startedAt = performance.now();
    const socket = net.connect({
      host: endpoint.host,
      port: endpoint.port,
      allowHalfOpen: true,
      noDelay: true,
      ...(this.options.onread ? { onread: this.options.onread } : {}),
    });
    this.socket = socket;
    socket.setTimeout(this.options.timeoutMs);
    socket.once('connect', this.onConnect);
    socket.once('timeout', this.onTimeout);
    socket.on('error', this.onError);
    if (this.options.preamble) socket.write(this.options.preamble);
  }

  /** The client left while connecting: drop the attempt and give the endpoint back. */
  abort(): void {
    const socket = this.socket;
    if (!socket) return;
    this.detach(socket);
    socket.on('error', ignoreError);
    socket.destroy();
    this.options.pool.release(this.endpoint!);
    this.socket = undefined;
  }

  private readonly onConnect = (): void => {
    const socket = this.socket!;
    const endpoint = this.endpoint!;
    this.detach(socket);
    socket.setTimeout(0);
    this.socket = undefined;
    this.options.pool.reportConnectSuccess(endpoint);
    this.handlers.connected(socket, endpoint, performance.now() - this.startedAt);
  };

  private readonly onTimeout = (): void => {
    this.retry(new ConnectTimeoutError(this.endpoint!, this.options.timeoutMs));
  };

  private readonly onError = (error: Error): void => {
    this.retry(error);
  };

  private retry(error: Error): void {
    const socket = this.socket!;
    const endpoint = this.endpoint!;
    this.detach(socket);
    socket.on('error', ignoreError);
    socket.destroy();
    this.socket = undefined;
    this.lastError = error;
    this.options.pool.release(endpoint);
    this.options.pool.reportConnectFailure(endpoint, error);
    this.handlers.attemptFailed(endpoint, error);
    this.start();
  }

  private fail(): void {
    this.handlers.failed({ reason: 'no_upstream', error: this.lastError ?? new Error('no upstream left to try') });
  }

  private detach(socket: Socket): void {
    socket.off('connect', this.onConnect);
    socket.off('timeout', this.onTimeout);
    socket.off('error', this.onError);
  }
}

function ignoreError(): void {}
