/**
 * The Listener: the seed's acceptor. One net.Server per configured listener; for each
 * accepted client it runs the one accept path, in order:
 *   accept -> (PROXY header) -> admit (acl, schedule, rate, limits | queue) -> Bridge.start()
 * Refusals close the client without a byte and without touching any upstream.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { AdmissionResult } from '../admission/admission.js';
import type { UpstreamPool } from '../balancing/upstream-pool.js';
import { shortageWarnings } from '../balancing/local-shortage.js';
import { readProxyHeader } from '../protocol/proxy-protocol.js';
import { matchServerName, readClientHello } from '../protocol/sni.js';
import { tlsSessionInfo } from '../protocol/tls.js';
import { formatPeer, logClose, logReject, unmapIPv4, type RejectReason } from '../observability/access-log.js';
import { watchWhileWaiting } from './waiting-client.js';
import { Bridge, type ClientIdentity } from './bridge.js';
import type { ListenerContext } from './listener-context.js';

export class ListenError extends Error {
  constructor(
    message: string,
    /** The system's code (EADDRINUSE, EACCES...), for callers that act on it. */
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/** The one-line message of a failed bind (a listener's or the admin endpoint's): which address and why. */
export function listenError(what: string, host: string, port: number, error: NodeJS.ErrnoException): ListenError {
  return new ListenError(`${what}: cannot listen on ${formatPeer(host, port)}: ${error.code ?? error.message}${describeCode(error.code)}`, error.code);
}

export class Listener {
  private readonly server: net.Server;

  constructor(private context: ListenerContext) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, this.onConnection);
  }

  get name(): string {
    return this.context.name;
  }

  get connections(): Set<Bridge> {
    return this.context.connections;
  }

  /** Binds the port; rejects with a one-line ListenError saying which address and why. */
  listen(): Promise<AddressInfo> {
    const { host, port } = this.context.config.listen;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        this.server.off('listening', onListening);
        reject(listenError(`listener "${this.name}"`, host, port, error));
      };
      const onListening = (): void => {
        this.server.off('error', onError);
        // Only now: a bind failure is not an accept failure (it used to log a bogus accept_error).
        this.server.on('error', this.onServerError);
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

  /** Reload: new connections follow the new context; established ones keep theirs. */
  use(context: ListenerContext): void {
    this.context = context;
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

  private readonly onConnection = (socket: Socket): void => {
    const context = this.context;
    socket.on('error', ignoreEarlyError);
    const address = socket.remoteAddress;
    if (address === undefined) {
      // Reset before we got to it: nothing to proxy, but it still gets its access-log line.
      socket.destroy();
      return logClose(context.logger, 'error', { ...emptyRecord(context.name, 'unknown'), error: 'ECONNRESET' });
    }
    const identity: ClientIdentity = { ip: unmapIPv4(address), port: socket.remotePort ?? 0 };
    if (context.config.proxy_protocol?.accept) return void this.readProxyHeader(context, socket, identity);
    this.admit(context, socket, identity);
  };

  private async readProxyHeader(context: ListenerContext, socket: Socket, peer: ClientIdentity): Promise<void> {
    const { accept, timeout } = context.config.proxy_protocol!;
    if (context.proxyTrusted && !context.proxyTrusted(peer.ip)) {
      return refuse(context, socket, peer, 'proxy_protocol', { error: 'peer not trusted to send PROXY headers' });
    }
    try {
      const { header, rest } = await readProxyHeader(socket, accept!, timeout);
      if (rest.length > 0) socket.unshift(rest);
      const addresses = header.addresses;
      const identity: ClientIdentity = addresses
        ? {
            ip: unmapIPv4(addresses.source.address),
            port: addresses.source.port,
            destination: addresses.destination,
            extra: { proxied_client: formatPeer(peer.ip, peer.port) },
          }
        : peer;
      this.admit(context, socket, identity);
    } catch (error) {
      refuse(context, socket, peer, 'proxy_protocol', { error: (error as Error).message });
    }
  }

  private admit(context: ListenerContext, socket: Socket, identity: ClientIdentity): void {
    if (context.shared !== undefined) {
      // limits_scope: cluster: Redis answers within cluster.timeout (else on_error does). The
      // client stays paused meanwhile; one that left is noticed by startOrRefuse.
      const shared = context.admission.admitShared(identity.ip);
      if (!(shared instanceof Promise)) return startOrRefuse(context, socket, identity, shared);
      return void shared.then((result) => startOrRefuse(context, socket, identity, result));
    }
    const decision = context.admission.admit(identity.ip);
    if (decision !== 'queue') return startOrRefuse(context, socket, identity, decision);
    // Over a limit with on_limit: queue. The client is not read beyond a bounded buffer
    // (the kernel holds the rest); it proceeds when a slot frees, leaves the queue if it
    // resets, or is refused after queue_timeout.
    const queuedAt = Date.now();
    const stopWatching = watchWhileWaiting(socket);
    let cancel = (): void => undefined;
    const leftTheQueue = (): void => {
      cancel();
      const error: NodeJS.ErrnoException | null = socket.errored;
      logClose(context.logger, error ? 'error' : 'client_closed', {
        ...emptyRecord(context.name, formatPeer(identity.ip, identity.port)),
        bytes_from_client: socket.bytesRead,
        duration_ms: Date.now() - queuedAt,
        ...identity.extra,
        ...(error && { error: error.code ?? error.message }),
      });
    };
    socket.once('close', leftTheQueue);
    // `done` may run before wait() returns (an immediate answer): everything it uses exists.
    cancel = context.admission.wait(identity.ip, (result) => {
      stopWatching();
      socket.off('close', leftTheQueue);
      startOrRefuse(context, socket, identity, result);
    });
  }

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
    shortageWarnings.warn(this.context.logger, error.code ?? error.message, { event: 'accept_error', listener: this.name, during: 'accept' }, 'accept failed; waiting clients may be closed unserved');
  };
}

function startOrRefuse(context: ListenerContext, socket: Socket, identity: ClientIdentity, result: AdmissionResult): void {
  if (!result.admitted) return refuse(context, socket, identity, result.reason);
  if (socket.destroyed) return result.slot.release();
  const release = (): void => result.slot.release();
  if (context.routes) return void routeByServerName(context, socket, identity, release);
  if (context.tls) return terminateTls(context, socket, identity, release);
  startBridge(context, socket, identity, release, context.pool);
}

function startBridge(context: ListenerContext, socket: Socket, identity: ClientIdentity, release: () => void, pool: UpstreamPool): void {
  socket.off('error', ignoreEarlyError);
  new Bridge(context, socket, identity, release, pool).start();
}

/**
 * SNI routing without terminating: peek at the ClientHello, pick the route's pool, and
 * put the bytes back so that the upstream receives the TLS stream untouched. A client
 * that does not speak TLS (or sends no name) takes the default route (`upstreams`).
 */
async function routeByServerName(context: ListenerContext, socket: Socket, identity: ClientIdentity, release: () => void): Promise<void> {
  try {
    const hello = await readClientHello(socket, handshakeTimeout(context));
    if (hello.buffered.length > 0) socket.unshift(hello.buffered);
    const name = hello.serverName;
    const route = name === undefined ? undefined : context.routes!.find((r) => matchServerName(r.sni, name));
    const routed: ClientIdentity = { ...identity, extra: { ...identity.extra, tls: { sni: name ?? null } } };
    startBridge(context, socket, routed, release, route?.pool ?? context.pool);
  } catch (error) {
    release();
    refuse(context, socket, identity, 'tls', { error: (error as Error).message });
  }
}

/** TLS termination: handshake with the client (bounded by handshake_timeout), then bridge plaintext. */
function terminateTls(context: ListenerContext, socket: Socket, identity: ClientIdentity, release: () => void): void {
  const secure = new tls.TLSSocket(socket, { isServer: true, ...context.tls });
  // A deadline for the whole handshake, not an idle timeout: a client trickling its
  // ClientHello a byte at a time would reset an idle timer forever.
  const deadline = setTimeout(() => fail(new Error('TLS handshake timed out')), handshakeTimeout(context));
  const settle = (): void => {
    clearTimeout(deadline);
    secure.off('secure', ready);
    secure.off('error', fail);
    secure.off('close', closedEarly);
  };
  const fail = (error: Error): void => {
    settle();
    secure.on('error', ignoreEarlyError);
    release();
    refuse(context, secure, identity, 'tls', { error: (error as NodeJS.ErrnoException).code ?? error.message });
  };
  const closedEarly = (): void => fail(new Error('connection closed during the TLS handshake'));
  const ready = (): void => {
    settle();
    secure.pause();
    const { version, sni, cipher, client_cert } = tlsSessionInfo(secure);
    startBridge(context, secure, { ...identity, extra: { ...identity.extra, tls: { version, sni: sni ?? null, cipher, client_cert } } }, release, context.pool);
  };
  secure.once('secure', ready);
  secure.once('error', fail);
  secure.once('close', closedEarly);
}

/** The bound on a client's TLS handshake or ClientHello; connect_timeout when not set (compatibility). */
function handshakeTimeout(context: ListenerContext): number {
  return context.config.handshake_timeout ?? context.config.connect_timeout;
}

function refuse(context: ListenerContext, socket: Socket, identity: ClientIdentity, reason: RejectReason, extra?: Record<string, unknown>): void {
  socket.destroy();
  context.metrics.rejected(reason);
  logReject(context.logger, reason, { ...emptyRecord(context.name, formatPeer(identity.ip, identity.port)), ...identity.extra, ...extra });
}

/** The access-log fields of a connection that never carried a byte. */
function emptyRecord(listener: string, client: string) {
  return { id: '-', listener, client, upstream: null, bytes_from_client: 0, bytes_to_client: 0, duration_ms: 0 };
}

/** Before the bridge owns the socket, an error (a reset while queued) just ends it. */
function ignoreEarlyError(): void {
  // the 'close' that follows does the cleanup
}

function describeCode(code: string | undefined): string {
  switch (code) {
    case 'EADDRINUSE': return ' (address already in use)';
    case 'EACCES': return ' (permission denied: ports below 1024 need privileges)';
    case 'EADDRNOTAVAIL': return ' (address not available on this machine)';
    case 'ENOTFOUND': return ' (host name not found)';
    default: return '';
  }
}
