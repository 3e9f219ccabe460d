/**
 * The Listener: the seed's acceptor. One net.Server per configured listener; each accepted
 * client runs the one accept path, an ordered list of stages (STAGES below):
 *   accept -> [PROXY header] -> admit (acl, schedule, rate, limits | queue)
 *          -> [SNI route | TLS handshake] -> Bridge.start() (pick upstream, connect, bridge)
 * Each stage passes the client on or refuses it; refusals have one owner (`refuse`), and
 * close the client without a byte and without touching any upstream.
 *
 * The plain path (no PROXY header to read, no TLS, no SNI routes, no filters): once bound,
 * the listener takes over the server handle's `onconnection`, so that such clients arrive as
 * raw libuv handles and become RawSockets (raw-socket.ts), with no net.Socket at all. Every
 * other client is handed to Node's own onconnection, which makes the net.Socket as before.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { AdmissionResult } from '../admission/admission.js';
import type { UpstreamPool } from '../balancing/upstream-pool.js';
import { shortageWarnings } from '../balancing/local-shortage.js';
import { readProxyHeader } from '../protocol/proxy-protocol.js';
import { matchServerName, readClientHello } from '../protocol/sni.js';
import { tlsSessionInfo } from '../protocol/tls.js';
import { errorFields, logClose } from '../observability/access-log.js';
import { emptyRecord, refuseConnection } from './refusal.js';
import type { RejectReason } from '../observability/reasons.js';
import { formatHostPort, unmapIPv4 } from '../net/address.js';
import { watchWhileWaiting } from './waiting-client.js';
import { Bridge, type ClientIdentity } from './bridge.js';
import type { ListenerContext, SniRoute } from './listener-context.js';
import { RawSocket, type PlainSocket } from './raw-socket.js';
import { tcpHandles, type ServerHandle, type TcpHandle } from './tcp-handle.js';
import { isSystemErrorCode, TcpProxyError } from '../errors/errors.js';
import type { ListenerState } from './listener-state.js';

export class ListenError extends TcpProxyError {
  constructor(message: string, systemCode: string | undefined) {
    // The system's code (EADDRINUSE, EACCES...) when it gave one, for callers that act on it.
    super(systemCode !== undefined && isSystemErrorCode(systemCode) ? systemCode : 'listen_failed', message);
  }
}

/** The one-line message of a failed bind (a listener's or the admin endpoint's): which address and why. */
export function listenError(what: string, host: string, port: number, error: NodeJS.ErrnoException): ListenError {
  return new ListenError(`${what}: cannot listen on ${formatHostPort(host, port)}: ${error.code ?? error.message}${describeCode(error.code)}`, error.code);
}

/** The server handle, with the listener that took over its accepts. */
interface TakenOverHandle extends ServerHandle {
  tcpproxyListener?: Listener;
  setNoDelay?(on: boolean): number;
}

/**
 * Linux copies TCP_NODELAY from a listening socket to the sockets it accepts: set once on the
 * listener, it saves a setsockopt per client (elsewhere each accepted handle sets it).
 */
const NODELAY_INHERITED = process.platform === 'linux';

export class Listener {
  private readonly server: net.Server;
  /** Node's own onconnection (makes a net.Socket and emits 'connection'), for the other clients. */
  private nodeOnConnection: ServerHandle['onconnection'] | undefined;
  /** Whether accepted handles have TCP_NODELAY already (set on the listening socket). */
  private nodelayInherited = false;

  /** Each accepted client gets the plan `state` has in force then (a reload swaps it there). */
  constructor(private readonly state: ListenerState) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, this.onConnection);
  }

  get name(): string {
    return this.state.name;
  }

  get connections(): Set<Bridge> {
    return this.state.connections;
  }

  /** Binds the port; rejects with a one-line ListenError saying which address and why. */
  listen(address: { readonly host: string; readonly port: number }): Promise<AddressInfo> {
    const { host, port } = address;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening);
        reject(listenError(`listener "${this.name}"`, host, port, error));
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        // Only now: a bind failure is not an accept failure (it used to log a bogus accept_error).
        this.server.on('error', this.onServerError);
        this.takeOverAccepts();
        resolve(this.server.address() as AddressInfo);
      };
      this.server.once('error', onError);
      this.server.once('listening', onListening);
      this.server.listen({ host, port, exclusive: false });
    });
  }

  address(): AddressInfo {
    return this.server.address() as AddressInfo;
  }

  /**
   * Stops accepting; established connections are left to the caller (drain or close).
   * The listening socket is closed at once; net.Server's own close callback would also
   * wait for every connection, which is the caller's business.
   */
  close(): void {
    if (this.server.listening) this.server.close();
  }

  // -- the accept path -----------------------------------------------------------------

  /**
   * Accepted clients arrive on the server handle's onconnection(status, clientHandle): in a
   * cluster worker too, where `_handle` is the round-robin stand-in that the primary's
   * handles are passed to (lib/internal/cluster/child.js calls its onconnection).
   */
  private takeOverAccepts(): void {
    if (tcpHandles === undefined) return;
    const handle = (this.server as unknown as { _handle: TakenOverHandle | null })._handle;
    if (handle === null || typeof handle.onconnection !== 'function') return;
    this.nodeOnConnection = handle.onconnection;
    handle.tcpproxyListener = this;
    handle.onconnection = onServerConnection;
    // (A cluster worker's round-robin stand-in has no socket, and no setNoDelay.)
    this.nodelayInherited = NODELAY_INHERITED && typeof handle.setNoDelay === 'function' && handle.setNoDelay(true) === 0;
  }

  /** From onServerConnection: a raw client handle, or Node's way for everything else. */
  accepted(serverHandle: ServerHandle, status: number, client: TcpHandle | undefined): void {
    const context = this.state.context;
    if (status !== 0 || client === undefined || !isPlain(context)) return this.nodeOnConnection!.call(serverHandle, status, client);
    const socket = new RawSocket(tcpHandles!, client);
    if (!this.nodelayInherited) client.setNoDelay(true);
    const peer: { address?: string; port?: number } = {};
    if (client.getpeername(peer) !== 0 || peer.address === undefined) {
      return resetBeforeAccepted(context, socket);
    }
    proceed(new Arrival(context, socket, { ip: unmapIPv4(peer.address), port: peer.port ?? 0 }), 0);
  }

  private readonly onConnection = (socket: Socket): void => {
    const context = this.state.context;
    socket.on('error', ignoreEarlyError);
    const address = socket.remoteAddress;
    if (address === undefined) {
      return resetBeforeAccepted(context, socket);
    }
    proceed(new Arrival(context, socket, { ip: unmapIPv4(address), port: socket.remotePort ?? 0 }), 0);
  };

  /**
   * An accept that failed. The process must survive it (an 'error' nobody listens to would
   * kill it), and there is no client to refuse or log: none was accepted. On Linux this
   * hardly ever runs even out of descriptors: at EMFILE/ENFILE libuv closes a descriptor it
   * keeps in reserve, accepts every waiting client and closes it at once, reopens the
   * reserve, and reports nothing (uv__emfile_trick in uv__server_io). Node emits this only
   * when that reserve is gone too (another thread took the descriptor it freed), or for
   * other accept errors (ENOBUFS, ENOMEM...).
   */
  private readonly onServerError = (error: NodeJS.ErrnoException): void => {
    shortageWarnings.warn(
      this.state.context.logger,
      error.code ?? error.message,
      { event: 'accept_error', listener: this.name, during: 'accept' },
      'accept failed; waiting clients may be closed unserved',
    );
  };
}

/** libuv calls it with `this` = the server handle: one function for every listener. */
function onServerConnection(this: TakenOverHandle, status: number, client: TcpHandle | undefined): void {
  this.tcpproxyListener!.accepted(this, status, client);
}

/** A client that reset before we got to it: nothing to proxy, but it still gets its access-log line. */
function resetBeforeAccepted(context: ListenerContext, socket: PlainSocket): void {
  socket.destroy();
  logClose(context.logger, 'error', { ...emptyRecord(context.name, 'unknown'), error: 'ECONNRESET', error_code: 'ECONNRESET' });
}

/** Whether a context's clients can take the plain path on raw handles. */
function isPlain(context: ListenerContext): boolean {
  return !context.config.proxy_protocol?.accept && !context.tls && !context.routes && !context.upstreamTls && context.pipeline === undefined;
}

/**
 * A raw client as the net.Socket Node would have made of it (net.js onconnection), for the
 * paths that need one: the admission queue, and filters turned on since the accept.
 */
function asNetSocket(client: PlainSocket): Socket {
  if (!(client instanceof RawSocket)) return client as Socket;
  return client.toNetSocket((handle) => {
    const options = { handle, allowHalfOpen: true, pauseOnCreate: true, readable: true, writable: true };
    const socket = new net.Socket(options);
    socket.setNoDelay(true);
    socket.on('error', ignoreEarlyError);
    return socket;
  });
}

// -- the accept path: an ordered list of stages -----------------------------------------

/** A client on its way through the accept path, and what the stages learned about it. */
class Arrival {
  /** Gives back the admission slot(s), once admitted: a later refusal does, else the bridge. */
  release: (() => void) | undefined;
  /** The upstream pool of its route: the listener's, or an SNI route's. */
  pool: UpstreamPool;

  constructor(
    /** The plan in force when it was accepted: it keeps it to the end. */
    readonly context: ListenerContext,
    public socket: PlainSocket,
    public identity: ClientIdentity,
  ) {
    this.pool = context.pool;
  }
}

/** What a stage answers: pass it on (undefined), refuse it, or GONE: it left, and the stage logged its line. */
type Verdict = undefined | Refusal | typeof GONE;
interface Refusal {
  readonly reason: RejectReason;
  readonly extra?: Record<string, unknown>;
}
const GONE = Symbol('gone');
type Stage = (arrival: Arrival) => Verdict | Promise<Verdict>;

/**
 * The accept path, in order. A stage that has nothing to do for this listener passes at
 * once; the plain path runs through without a promise. Refusals are `refuse()`'s alone.
 */
const STAGES: readonly Stage[] = [receiveProxyHeader, admit, routeByServerName, terminateTls];

/** Runs the stages from `from`, then bridges the client. */
function proceed(arrival: Arrival, from: number): void {
  for (let i = from; i < STAGES.length; i++) {
    const verdict = STAGES[i]!(arrival);
    if (verdict instanceof Promise) {
      void verdict.then((settled) => (settled === undefined ? proceed(arrival, i + 1) : stop(arrival, settled)));
      return;
    }
    if (verdict !== undefined) return stop(arrival, verdict);
  }
  startBridge(arrival);
}

function stop(arrival: Arrival, verdict: Refusal | typeof GONE): void {
  if (verdict === GONE) return arrival.release?.();
  refuse(arrival, verdict);
}

/** The one owner of refusals on the accept path: slot back, then closed, counted and logged (refusal.ts). */
function refuse(arrival: Arrival, { reason, extra }: Refusal): void {
  arrival.release?.();
  const { context, identity } = arrival;
  refuseConnection(context, arrival.socket, reason, { ...emptyRecord(context.name, formatHostPort(identity.ip, identity.port)), ...identity.extra, ...extra });
}

/** `proxy_protocol.accept`: the client's identity is the one its PROXY header names. */
function receiveProxyHeader(arrival: Arrival): Verdict | Promise<Verdict> {
  const { context } = arrival;
  // Read without a `?? {}` default: this runs for every client, the plain path's too.
  const proxyProtocol = context.config.proxy_protocol;
  if (!proxyProtocol?.accept) return undefined;
  if (context.proxyTrusted && !context.proxyTrusted(arrival.identity.ip))
    return { reason: 'proxy_protocol', extra: { error: 'peer not trusted to send PROXY headers' } };
  return readHeader(arrival, proxyProtocol.accept, proxyProtocol.timeout);
}

async function readHeader(arrival: Arrival, accept: Parameters<typeof readProxyHeader>[1], timeout: number): Promise<Verdict> {
  const peer = arrival.identity;
  // Raw clients come only from plain contexts (isPlain): the stages that read have a net.Socket.
  const socket = arrival.socket as Socket;
  try {
    const { header, rest } = await readProxyHeader(socket, accept, timeout);
    if (rest.length > 0) socket.unshift(rest);
    const addresses = header.addresses;
    if (addresses) {
      arrival.identity = {
        ip: unmapIPv4(addresses.source.address),
        port: addresses.source.port,
        destination: addresses.destination,
        extra: { proxied_client: formatHostPort(peer.ip, peer.port) },
      };
    }
    return undefined;
  } catch (error) {
    return { reason: 'proxy_protocol', extra: errorFields(error as Error) };
  }
}

/** acl, schedule, rate, limits (or a place in the queue), per process or cluster-wide. */
function admit(arrival: Arrival): Verdict | Promise<Verdict> {
  const { context, identity } = arrival;
  if (context.shared !== undefined) {
    // limits_scope: cluster: Redis answers within cluster.timeout (else on_error does). The
    // client stays paused meanwhile; one that left is noticed by admitted().
    const shared = context.admission.admitShared(identity.ip);
    return shared instanceof Promise ? shared.then((result) => admitted(arrival, result)) : admitted(arrival, shared);
  }
  const decision = context.admission.admit(identity.ip);
  return decision === 'queue' ? waitInQueue(arrival) : admitted(arrival, decision);
}

function admitted(arrival: Arrival, result: AdmissionResult): Verdict {
  if (!result.admitted) return { reason: result.reason };
  const { slot } = result;
  arrival.release = () => slot.release();
  // It left while its admission was decided: nothing to log but the slot to give back.
  return arrival.socket.destroyed ? GONE : undefined;
}

/**
 * Over a limit with on_limit: queue. The client is not read (the kernel holds what it
 * sends); it proceeds when a slot frees, leaves the queue if it resets (its line: closed
 * by the client, or error), or is refused after queue_timeout.
 */
function waitInQueue(arrival: Arrival): Promise<Verdict> {
  const { context, identity } = arrival;
  // The queue watches a net.Socket (its 'close', errored, the dead-peer probe).
  const socket = asNetSocket(arrival.socket);
  arrival.socket = socket;
  const queuedAt = Date.now();
  const stopWatching = watchWhileWaiting(socket);
  return new Promise((resolve) => {
    let cancel = (): void => undefined;
    const leftTheQueue = (): void => {
      cancel();
      const error: NodeJS.ErrnoException | null = socket.errored;
      logClose(context.logger, error ? 'error' : 'client_closed', {
        ...emptyRecord(context.name, formatHostPort(identity.ip, identity.port)),
        bytes_from_client: socket.bytesRead,
        duration_ms: Date.now() - queuedAt,
        ...identity.extra,
        ...(error && errorFields(error)),
      });
      resolve(GONE);
    };
    socket.once('close', leftTheQueue);
    // `done` may run before wait() returns (an immediate answer): everything it uses exists.
    cancel = context.admission.wait(identity.ip, (result) => {
      stopWatching();
      socket.off('close', leftTheQueue);
      resolve(admitted(arrival, result));
    });
  });
}

/**
 * SNI routing without terminating: peek at the ClientHello, pick the route's pool, and
 * put the bytes back so that the upstream receives the TLS stream untouched. A client
 * that does not speak TLS (or sends no name) takes the default route (`upstreams`).
 */
function routeByServerName(arrival: Arrival): Verdict | Promise<Verdict> {
  return arrival.context.routes ? peekServerName(arrival, arrival.context.routes) : undefined;
}

async function peekServerName(arrival: Arrival, routes: readonly SniRoute[]): Promise<Verdict> {
  const { context } = arrival;
  const socket = arrival.socket as Socket;
  try {
    const hello = await readClientHello(socket, handshakeTimeout(context));
    if (hello.buffered.length > 0) socket.unshift(hello.buffered);
    const name = hello.serverName;
    const route = name === undefined ? undefined : routes.find((r) => matchServerName(r.sni, name));
    arrival.identity = { ...arrival.identity, extra: { ...arrival.identity.extra, tls: { sni: name ?? null } } };
    arrival.pool = route?.pool ?? context.pool;
    return undefined;
  } catch (error) {
    return { reason: 'tls', extra: errorFields(error as Error) };
  }
}

/** TLS termination: handshake with the client (bounded by handshake_timeout), then bridge plaintext. */
function terminateTls(arrival: Arrival): Verdict | Promise<Verdict> {
  const { context } = arrival;
  if (!context.tls) return undefined;
  const secure = new tls.TLSSocket(arrival.socket as Socket, { isServer: true, ...context.tls });
  arrival.socket = secure;
  return new Promise((resolve) => {
    // A deadline for the whole handshake, not an idle timeout: a client trickling its
    // ClientHello a byte at a time would reset an idle timer forever.
    const deadline = setTimeout(() => fail(new TcpProxyError('tls_handshake', 'TLS handshake timed out')), handshakeTimeout(context));
    const settle = (): void => {
      clearTimeout(deadline);
      secure.off('secure', ready);
      secure.off('error', fail);
      secure.off('close', closedEarly);
    };
    const fail = (error: Error): void => {
      settle();
      secure.on('error', ignoreEarlyError);
      resolve({ reason: 'tls', extra: errorFields(error) });
    };
    const closedEarly = (): void => fail(new TcpProxyError('tls_handshake', 'connection closed during the TLS handshake'));
    const ready = (): void => {
      settle();
      secure.pause();
      const { version, sni, cipher, client_cert } = tlsSessionInfo(secure);
      arrival.identity = { ...arrival.identity, extra: { ...arrival.identity.extra, tls: { version, sni: sni ?? null, cipher, client_cert } } };
      resolve(undefined);
    };
    secure.once('secure', ready);
    secure.once('error', fail);
    secure.once('close', closedEarly);
  });
}

/** The end of the accept path: the bridge owns the client (and its admission slot) from here. */
function startBridge({ context, socket: client, identity, release, pool }: Arrival): void {
  // Live filters engaged since the accept: the filtered path needs a net.Socket.
  const socket = context.state.live.engaged ? asNetSocket(client) : client;
  socket.off('error', ignoreEarlyError);
  new Bridge(context, socket, identity, release!, pool).start();
}

/** The bound on a client's TLS handshake or ClientHello; connect_timeout when not set (compatibility). */
function handshakeTimeout(context: ListenerContext): number {
  return context.config.handshake_timeout ?? context.config.connect_timeout;
}

/** Before the bridge owns the socket, an error (a reset while queued) just ends it. */
function ignoreEarlyError(): void {
  // the 'close' that follows does the cleanup
}

function describeCode(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE':
      return ' (address already in use)';
    case 'EACCES':
      return ' (permission denied: ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL':
      return ' (address not available on this machine)';
    case 'ENOTFOUND':
      return ' (host name not found)';
    default:
      return '';
  }
}
