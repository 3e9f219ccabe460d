/**
 * The admin HTTP endpoint (node:http). It owns the plumbing: body limits, routing, the token,
 * the same-origin check, error containment (a failing handler is a 500, never a crash) and
 * response headers. What each route does lives in routes.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { AdminRuntime } from './admin-runtime.js';
import { BearerToken, isSameOrigin } from './auth.js';
import { dashboardPage } from './dashboard/page.js';
import { errorReply, type Reply } from './reply.js';
import { Router } from './router.js';
import { adminRoutes, type AdminHandler } from './routes.js';

export type { AdminRuntime, ConnectionInfo, StatsSnapshot } from './admin-runtime.js';

export interface AdminServerOptions {
  listen: { host: string; port: number };
  /** When set, every route but /healthz, /readyz and the dashboard page needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  runtime: AdminRuntime;
  logger: Logger;
  /** Bounds on a slow client (defaults: ADMIN_TIMEOUTS); smaller in tests. */
  timeouts?: AdminTimeouts;
}

export interface AdminTimeouts {
  /** The whole request head must arrive within this (then 408 and close). */
  headersMs: number;
  /** The whole request, body included. */
  requestMs: number;
  /** How often Node checks both: a slow client is cut at most this late. */
  checkEveryMs: number;
}

/**
 * A client trickling its request head (slowloris) holds a socket and a parser: cut it.
 * Node checks these bounds only every `connectionsCheckingInterval` (30 s by default), hence 1 s.
 */
export const ADMIN_TIMEOUTS: AdminTimeouts = { headersMs: 10_000, requestMs: 30_000, checkEveryMs: 1_000 };

/** No admin route reads a body; larger ones are refused outright rather than drained. */
const MAX_BODY_BYTES = 64 * 1024;

const COMMON_HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

export class AdminServer {
  private readonly server: Server;
  private readonly router: Router<AdminHandler>;
  private readonly token: BearerToken | null;
  private readonly logger: Logger;

  constructor(private readonly options: AdminServerOptions) {
    this.logger = options.logger;
    this.token = options.token === undefined || options.token === '' ? null : new BearerToken(options.token);
    this.router = new Router(adminRoutes(options.runtime, dashboardPage(), options.logger));
    const timeouts = options.timeouts ?? ADMIN_TIMEOUTS;
    this.server = createServer(
      { headersTimeout: timeouts.headersMs, requestTimeout: timeouts.requestMs, connectionsCheckingInterval: timeouts.checkEveryMs },
      (req, res) => void this.handle(req, res),
    );
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
      this.logger.debug({ err: error }, 'admin: bad HTTP request');
      // A head or request not complete in time (headersTimeout, requestTimeout) is told so.
      const status = error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      if (socket.writable && error.code !== 'ECONNRESET') socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
      else socket.destroy();
    });
  }

  start(): Promise<{ address: string; port: number }> {
    const { host, port } = this.options.listen;
    return new Promise((resolve, reject) => {
      const onListenError = (error: Error) => reject(error);
      this.server.once('error', onListenError);
      this.server.listen(port, host, () => {
        this.server.off('error', onListenError);
        this.server.on('error', (error) => this.logger.error({ err: error }, 'admin server error'));
        const bound = this.server.address() as AddressInfo;
        this.logger.info({ event: 'admin_listening', address: bound.address, port: bound.port }, 'admin endpoint listening');
        resolve({ address: bound.address, port: bound.port });
      });
    });
  }

  /** Stops listening and drops idle keep-alive connections so that close() does not wait on browsers. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      // In-flight requests get a moment to finish, then their sockets go too.
      const force = setTimeout(() => this.server.closeAllConnections(), 1000).unref();
      this.server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let reply: Reply;
    try {
      reply = await this.route(req, res);
    } catch (error) {
      this.logger.error({ err: error, method: req.method, url: req.url }, 'admin request failed');
      reply = errorReply(500, 'internal error');
    }
    this.send(res, reply);
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<Reply> {
    if (hasBody(req)) {
      // The body is discarded; closing afterwards keeps a large or endless one from being read.
      res.setHeader('Connection', 'close');
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return errorReply(413, 'request body too large');
    }
    req.resume();
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const pathname = queryStart === -1 ? url : url.slice(0, queryStart);
    if (!pathname.startsWith('/')) return errorReply(400, 'bad request target');
    const match = this.router.match(req.method ?? 'GET', pathname);
    switch (match.kind) {
      case 'bad_path':
        return errorReply(400, 'malformed percent-encoding in path');
      case 'not_found':
        return errorReply(404, 'not found');
      case 'method_not_allowed': {
        const reply = errorReply(405, 'method not allowed');
        reply.headers = { Allow: match.allow.join(', ') };
        return reply;
      }
      case 'found':
        break;
    }
    const handler = match.route.handler;
    if (!handler.open && this.token !== null && !this.token.accepts(req.headers.authorization)) {
      const reply = errorReply(401, 'missing or wrong bearer token');
      reply.headers = { 'WWW-Authenticate': 'Bearer realm="tcpproxy-admin"' };
      return reply;
    }
    if (match.route.method !== 'GET' && !isSameOrigin(req.headers)) return errorReply(403, 'cross-origin request refused');
    const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
    return handler.run({ params: match.params, query });
  }

  private send(res: ServerResponse, reply: Reply): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(reply.status, {
      ...COMMON_HEADERS,
      ...reply.headers,
      'Content-Type': reply.contentType,
      'Content-Length': Buffer.byteLength(reply.body),
    });
    res.end(reply.body);
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
