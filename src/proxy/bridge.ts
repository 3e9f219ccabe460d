/**
 * The Bridge: one proxied connection (the seed's "session"). It connects upstream, then
 * runs two independent loops, each "read, then write, and read again only when the write
 * completed" (natural backpressure):
 *
 *   to_upstream: onClientRead (handle_downstream_read) reads straight into this bridge's own
 *                buffer -> upstream.write; if the write is pending, stop reading until
 *                onUpstreamWritten (handle_upstream_write).
 *   to_client:   onUpstreamRead (handle_upstream_read) -> client.write, the same way with
 *                the other buffer; if pending, stop reading until onClientWritten
 *                (handle_downstream_write).
 *
 * Both reads use `onread` with a buffer owned by the bridge: no allocation per chunk. On the
 * plain path both sockets are RawSockets (raw-socket.ts: libuv handles, no net.Socket), which
 * offer the same calls as net.Socket for this loop (PlainSocket), so it is written once. Without
 * raw handles, the accepted client socket gets it by handing its handle to a new socket
 * (read-in-place.ts); where that cannot be (TLS, bytes already read) or the upstream is TLS,
 * the loop runs the same way over 'data' events and 'drain'.
 *
 * FIN is carried through (allowHalfOpen on both sockets: one direction ending leaves the
 * other open); a reset or error on either side destroys the other. While a socket is not
 * polled (the client while connecting or queued, a direction paused, a peer's FIN read) the
 * bridge is registered with the dead-peer sweep, which probes it (`probe()`). Every resource is
 * released in one place, `finish()`, exactly once, which writes the access-log line.
 * When the listener has filters or inspection, the two loops are FilteredDirections instead;
 * so too when it has live filters (toxics) when the connection starts, or is always live
 * (filters/live.ts says why an open plain-path connection is not switched over).
 */
import type { Socket } from 'node:net';
import type { Endpoint } from '../balancing/endpoint.js';
import type { UpstreamPool } from '../balancing/upstream-pool.js';
import type { DataPipeline } from '../pipeline/pipeline.js';
import { FilteredDirection } from '../filters/filtered-direction.js';
import { connectionPipeline } from '../pipeline/live.js';
import { errorFields, logClose } from '../observability/access-log.js';
import { refuseConnection } from './refusal.js';
import type { CloseReason } from '../observability/reasons.js';
import { formatHostPort } from '../net/address.js';
import { ConnectRefusal, connectUpstream, type Connected } from './connect.js';
import { ConnectAbort } from './connect-abort.js';
import type { ListenerContext } from './listener-context.js';
import { DirectionBuffer } from './read-buffers.js';
import { readInPlace } from './read-in-place.js';
import { deadPeerSweep, type Watched } from './dead-peer-sweep.js';
import { destroySocket } from './destroy-socket.js';
import { endIfPeerGone, endWasReset, PeerGoneError } from './peer-probe.js';
import { SideTimeouts } from './side-timeouts.js';
import { RawSocket, type PlainSocket } from './raw-socket.js';
import { deadlineWheel, type Deadline } from './deadline-wheel.js';
import { burstCollector } from './burst-collector.js';
import { TcpProxyError } from '../errors/errors.js';

export interface ClientIdentity {
  /** The client's IP (from the socket, or from an accepted PROXY header). */
  readonly ip: string;
  readonly port: number;
  /**
   * The address the client originally connected to, from an accepted PROXY header:
   * a PROXY header sent on carries it (as HAProxy does), not this listener's address.
   */
  readonly destination?: { readonly address: string; readonly port: number };
  /** Access-log extras known before the bridge (PROXY-protocol peer, TLS details). */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export class Bridge implements Watched, Deadline {
  readonly id: string;
  readonly startedAt = Date.now();
  readonly clientLabel: string;
  private upstream: PlainSocket | undefined;
  private endpoint: Endpoint | undefined;
  /** While connecting upstream: aborted when the client leaves first. */
  private connecting: ConnectAbort | undefined;
  private pipeline: DataPipeline | undefined;
  private directions: [FilteredDirection, FilteredDirection] | undefined;
  /** Decided once, in start(): the filtered path (configured or live filters) or the plain one. */
  private filtered = false;
  /** max_lifetime or an enforced schedule window's end, on the deadline wheel. */
  wheelTick: number | undefined;
  private endOfLife: 'max_lifetime' | 'schedule' = 'max_lifetime';
  /** idle_timeout, client_timeout, server_timeout: on the sockets' timers, the deadline wheel for raw ones (side-timeouts.ts). */
  private timeouts: SideTimeouts | undefined;
  private upstreamPaused = false;
  private clientPaused = false;
  /** Each direction's read buffer (growing with its traffic; given back once both sockets are closed). */
  private clientReads: DirectionBuffer | undefined;
  private upstreamReads: DirectionBuffer | undefined;
  private openSockets = 1;
  private firstFin: 'client' | 'upstream' | undefined;
  private reason: CloseReason | undefined;
  private error: Error | undefined;
  private finished = false;
  /** Registered with the dead-peer sweep (until a probe finds nothing unpolled). */
  private watched = false;

  constructor(
    private readonly context: ListenerContext,
    /**
     * A RawSocket on the plain path (only a plain bridge gets one: listener.ts); else a
     * net.Socket, replaced once, on connect, by the same connection reading in place.
     */
    private client: PlainSocket,
    private readonly identity: ClientIdentity,
    /** Releases the admission slot(s) this connection holds; called exactly once. */
    private readonly releaseAdmission: () => void,
    /** The upstream pool of this connection's route (the listener's, or an SNI route's). */
    private readonly pool: UpstreamPool = context.pool,
  ) {
    this.id = context.state.ids.next();
    this.clientLabel = formatHostPort(identity.ip, identity.port);
    client.on('error', this.onClientError);
    client.on('close', this.onSocketClose);
    context.state.connections.add(this);
    burstCollector.opened();
  }

  /** accept -> admitted: pick an upstream and connect (the client stays paused meanwhile). */
  start(): void {
    const { config } = this.context;
    this.filtered = this.context.pipeline !== undefined || this.context.state.live.engaged;
    // One timer for both ends of life: max_lifetime, and an enforced schedule window's end.
    const windowEnd = this.context.scheduleCloses?.(new Date(this.startedAt));
    const untilWindowEnd = windowEnd ? Math.max(0, windowEnd.getTime() - this.startedAt) : Infinity;
    const lifetime = config.max_lifetime > 0 ? config.max_lifetime : Infinity;
    if (Math.min(untilWindowEnd, lifetime) < Infinity) {
      this.endOfLife = untilWindowEnd < lifetime ? 'schedule' : 'max_lifetime';
      deadlineWheel.schedule(this, this.startedAt + Math.min(untilWindowEnd, lifetime));
    }
    // The client is not read until its upstream is connected: the sweep watches it meanwhile.
    this.watch();
    this.connecting = new ConnectAbort();
    connectUpstream(
      {
        pool: this.pool,
        clientIp: this.identity.ip,
        timeoutMs: config.connect_timeout,
        retries: config.connect_retries,
        // The zero-copy read needs a plain TCP upstream and no filters in between.
        // A function: the buffer is taken when an attempt opens its socket, not while queued.
        onread: this.filtered || this.context.upstreamTls ? undefined : { buffer: this.upstreamReadBuffer, callback: this.onUpstreamRead },
        // The plain loop over two RawSockets (a net.Socket client's 'data' loop needs 'drain').
        raw: this.client instanceof RawSocket ? this.client.handles : undefined,
        preamble: this.context.proxyHeader?.(this.client, this.identity),
        tls: this.context.upstreamTls,
        queue: this.context.upstreamQueues.get(this.pool),
        metrics: this.context.metrics,
      },
      this.connecting.signal,
      // Closures made here, not fields: they die with the connect, not with the connection.
    ).then(
      (connected) => this.onConnected(connected),
      (error: unknown) => this.onConnectFailed(error),
    );
  }

  /** Ends the connection now (admin, shutdown, timeouts, filters): both sockets are destroyed. */
  close(reason: CloseReason, options: { reset?: boolean } = {}): void {
    this.reason ??= reason;
    this.destroyBoth(options.reset === true);
  }

  get listenerName(): string {
    return this.context.name;
  }

  get upstreamLabel(): string | null {
    return this.endpoint?.label ?? null;
  }

  get bytesFromClient(): number {
    return this.client.bytesRead;
  }

  get bytesToClient(): number {
    return this.client.bytesWritten ?? 0;
  }

  /**
   * The dead-peer sweep's check: probes the sockets libuv does not poll now, and ends the
   * connection (through the socket's 'error') when a peer is gone. Answers whether some
   * socket is still unpolled, i.e. whether to be probed again.
   */
  probe(): boolean {
    const { client, upstream } = this;
    if (this.finished || endIfPeerGone(client) || (upstream !== undefined && endIfPeerGone(upstream))) return (this.watched = false);
    this.watched =
      this.connecting !== undefined ||
      this.firstFin !== undefined ||
      this.clientPaused ||
      this.upstreamPaused ||
      client.isPaused() ||
      upstream?.isPaused() === true;
    return this.watched;
  }

  /** On entering a state where a socket is not polled; cheap enough for the pause path. */
  private watch(): void {
    if (this.watched) return;
    this.watched = true;
    deadPeerSweep.watch(this);
  }

  // -- connect phase -------------------------------------------------------------------

  private onConnected({ socket: upstream, endpoint, connectMs }: Connected): void {
    this.connecting = undefined;
    this.upstream = upstream;
    this.endpoint = endpoint;
    this.openSockets++;
    this.context.metrics.bridged();
    this.context.metrics.connected(endpoint.label, connectMs / 1000);
    upstream.on('error', this.onUpstreamError);
    upstream.on('close', this.onSocketClose);
    upstream.on('end', this.onUpstreamEnd);
    if (this.filtered) {
      this.listenToClient();
      // Filtered bridges have net.Socket clients (listener.ts) and upstreams (no `raw` asked).
      return this.startFiltered(upstream as Socket, endpoint);
    }
    this.readClientInPlace();
    if (this.context.upstreamTls) {
      // (Closures made only on this path: a plain bridge does not pay for them.)
      (upstream as Socket).on('data', (chunk: Buffer) => this.carryUpstreamData(chunk));
      (this.client as Socket).on('drain', () => this.upstream!.resume());
    }
    this.client.resume();
  }

  /**
   * Node asks again after every read (a new buffer each time is allowed): the direction's
   * current one, taken on first use. A retry's socket gets it too; the failed attempt's
   * handle is closed.
   */
  private readonly upstreamReadBuffer = (): Buffer => (this.upstreamReads ??= new DirectionBuffer(this.context.config.buffer_size)).buffer;

  private listenToClient(): void {
    this.client.on('end', this.onClientEnd);
    this.timeouts = new SideTimeouts(this.context.config, this.client, this.upstream!, this.onInactive);
  }

  /** Moves the client to zero-copy reads when it can be; otherwise the 'data' loop. */
  private readClientInPlace(): void {
    const reads = (this.clientReads = new DirectionBuffer(this.context.config.buffer_size));
    if (this.client instanceof RawSocket) {
      this.client.readInto(reads.buffer, this.onClientRead);
      return this.listenToClient();
    }
    // Asked after every read, as upstreamReadBuffer: the buffer may have grown.
    const adopted = readInPlace(this.client as Socket, () => this.clientReads!.buffer, this.onClientRead);
    if (adopted) {
      this.client.off('error', this.onClientError);
      this.client.off('close', this.onSocketClose);
      this.client = adopted;
      adopted.on('error', this.onClientError);
      adopted.on('close', this.onSocketClose);
    } else {
      reads.giveBack();
      this.clientReads = undefined;
      (this.client as Socket).on('data', (chunk: Buffer) => this.carryClientData(chunk));
      (this.upstream as Socket).on('drain', () => this.client.resume());
    }
    this.listenToClient();
  }

  /** No upstream took the client; or it left first (aborted: its 'close' ends the bridge). */
  private onConnectFailed(error: unknown): void {
    if (this.connecting === undefined) return;
    this.connecting = undefined;
    if (error instanceof ConnectRefusal) return this.reject(error.reason, error.failure);
    // Not a refusal: a bug while connecting. End the connection rather than leave it waiting.
    this.error ??= error instanceof Error ? error : new TcpProxyError('internal', String(error));
    this.close('error');
  }

  /** Refused after admission (no upstream could take it): closed without a byte. */
  private reject(reason: ConnectRefusal['reason'], error?: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    this.client.off('close', this.onSocketClose);
    refuseConnection(this.context, this.client, reason, { ...this.accessRecord(), ...(error ? errorFields(error) : {}) });
  }

  // -- to_upstream: client -> upstream -------------------------------------------------

  private readonly onClientRead = (length: number, buffer: Buffer): boolean => {
    const upstream = this.upstream!;
    upstream.write(length === buffer.length ? buffer : buffer.subarray(0, length), this.onUpstreamWritten);
    this.clientReads!.filled(length);
    // As in to_client: read again only once the write no longer holds our buffer.
    if (upstream.writableLength === 0) {
      growIfDue(this.clientReads!, this.client, this.onClientRead);
      return true;
    }
    this.clientPaused = true;
    this.watch();
    return false;
  };

  private readonly onUpstreamWritten = (): void => {
    if (this.clientPaused && this.upstream!.writableLength === 0) {
      this.clientPaused = false;
      growIfDue(this.clientReads!, this.client, this.onClientRead);
      this.client.resume();
    }
  };

  /** The same loop over 'data' events, when the client cannot read in place. */
  private carryClientData(chunk: Buffer): void {
    if (this.upstream!.write(chunk)) return;
    this.client.pause();
    this.watch();
  }

  private readonly onClientEnd = (): void => {
    if (endWasReset(this.client)) return this.onClientError(new PeerGoneError());
    this.firstFin ??= 'client';
    // The client is not read any more: only a probe can tell that it reset after its FIN.
    this.watch();
    // The filtered direction ends the upstream itself, after flushing its chain.
    if (!this.directions) this.upstream!.end();
  };

  // -- to_client: upstream -> client ---------------------------------------------------

  private readonly onUpstreamRead = (length: number, buffer: Buffer): boolean => {
    this.client.write(length === buffer.length ? buffer : buffer.subarray(0, length), this.onClientWritten);
    this.upstreamReads!.filled(length);
    // Written through to the kernel: the buffer is free, read again. Otherwise the write
    // still holds our buffer: stop reading until it completes.
    if (this.client.writableLength === 0) {
      growIfDue(this.upstreamReads!, this.upstream, this.onUpstreamRead);
      return true;
    }
    this.upstreamPaused = true;
    this.watch();
    return false;
  };

  /** The same loop over 'data' events, when the upstream is a TLS socket (no onread there). */
  private carryUpstreamData(chunk: Buffer): void {
    if (this.client.write(chunk)) return;
    this.upstream!.pause();
    this.watch();
  }

  private readonly onClientWritten = (): void => {
    if (this.upstreamPaused && this.client.writableLength === 0 && this.upstream) {
      this.upstreamPaused = false;
      growIfDue(this.upstreamReads!, this.upstream, this.onUpstreamRead);
      this.upstream.resume();
    }
  };

  private readonly onUpstreamEnd = (): void => {
    // Before anything carries the FIN on (the filtered direction's own 'end' listener included).
    if (endWasReset(this.upstream!)) return this.onUpstreamError(new PeerGoneError());
    this.firstFin ??= 'upstream';
    this.watch();
    if (!this.directions) this.client.end();
  };

  // -- filtered mode -------------------------------------------------------------------

  private startFiltered(upstream: Socket, endpoint: Endpoint): void {
    const pipeline = connectionPipeline(this.context.pipeline, this.context.state.live, {
      id: this.id,
      listener: this.context.name,
      log: this.context.logger,
      client: { address: this.identity.ip, port: this.identity.port },
      proxyFront: { address: this.client.localAddress ?? '', port: this.client.localPort ?? 0 },
      proxyBack: { address: upstream.localAddress ?? '', port: upstream.localPort ?? 0 },
      upstream: { address: endpoint.host, port: endpoint.port },
      close: (reason, options) => this.close(reason as CloseReason, options),
    });
    this.pipeline = pipeline;
    const client = this.client as Socket;
    const onFailure = (error: unknown): void => this.filterFailed(error);
    // One of the directions paused its source: the sweep watches it meanwhile.
    const onPaused = (): void => this.watch();
    this.directions = [
      new FilteredDirection(client, upstream, pipeline.toUpstream, onFailure, onPaused),
      new FilteredDirection(upstream, client, pipeline.toClient, onFailure, onPaused),
    ];
    this.directions[0].start();
    this.directions[1].start();
  }

  private filterFailed(error: unknown): void {
    this.error = error instanceof Error ? error : new TcpProxyError('filter_failed', String(error));
    this.close('filter');
  }

  // -- teardown ------------------------------------------------------------------------

  private readonly onInactive = (reason: CloseReason): void => this.close(reason);

  deadlineReached(): void {
    this.close(this.endOfLife);
  }

  private readonly onClientError = (error: Error): void => {
    this.error ??= error;
    this.reason ??= 'error';
    this.stopConnecting();
    this.destroyBoth(true);
  };

  private readonly onUpstreamError = (error: Error): void => {
    this.error ??= error;
    this.reason ??= 'error';
    this.destroyBoth(true);
  };

  private readonly onSocketClose = (): void => {
    if (--this.openSockets === 0) this.finish();
  };

  private destroyBoth(reset: boolean): void {
    destroySocket(this.client, reset);
    if (this.upstream) destroySocket(this.upstream, reset);
    else this.stopConnecting();
  }

  private stopConnecting(): void {
    this.connecting?.abort();
    this.connecting = undefined;
  }

  /** The one teardown path: timers, slots, counters, the access-log line. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
    const reason = this.reason ?? (this.firstFin === 'upstream' ? 'upstream_closed' : 'client_closed');
    const record = this.accessRecord();
    // Metrics pair closed() with bridged(): a client that never reached its upstream has neither.
    if (this.endpoint) {
      this.context.metrics.closed(reason, record.upstream, record.bytes_from_client, record.bytes_to_client, record.duration_ms / 1000);
    }
    logClose(this.context.logger, reason, this.error ? { ...record, ...errorFields(this.error) } : record);
  }

  private release(): void {
    deadlineWheel.cancel(this);
    this.timeouts?.stop();
    if (this.watched) deadPeerSweep.unwatch(this);
    this.watched = false;
    if (this.directions) {
      this.directions[0].stop();
      this.directions[1].stop();
    }
    this.pipeline?.destroy();
    if (this.endpoint) this.pool.release(this.endpoint);
    this.context.state.connections.delete(this);
    burstCollector.closed();
    this.clientReads?.giveBack();
    this.upstreamReads?.giveBack();
    this.releaseAdmission();
  }

  private accessRecord() {
    return {
      id: this.id,
      listener: this.context.name,
      client: this.clientLabel,
      upstream: this.upstreamLabel,
      bytes_from_client: this.bytesFromClient,
      bytes_to_client: this.bytesToClient,
      duration_ms: Date.now() - this.startedAt,
      ...this.identity.extra,
    };
  }
}

/**
 * Called when no write holds a direction's buffer: a bigger one if its reads filled it. A raw
 * socket is told; a net.Socket asks for the direction's buffer after each read by itself.
 */
function growIfDue(reads: DirectionBuffer, socket: PlainSocket | undefined, onRead: (length: number, buffer: Buffer) => boolean): void {
  const grown = reads.grown();
  if (grown !== undefined && socket instanceof RawSocket) socket.readInto(grown, onRead);
}
