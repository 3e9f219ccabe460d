/**
 * The admin HTTP endpoint (node:http). It owns the plumbing: body limits, routing, the token,
 * the same-origin check, error containment (a failing handler is a 500, never a crash) and
 * response headers. What each route does lives in routes.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { listenError } from '../proxy/listener.js';
import type { AdminRuntime } from './admin-runtime.js';
import { BearerToken, isSameOrigin } from './auth.js';
import { BodyTooLargeError, readBody } from '../http/body.js';
import { dashboardPage } from './dashboard/page.js';
import { errorReply, type Reply } from './reply.js';
import { Router } from '../http/router.js';
import { adminRoutes, type AdminHandler } from './routes.js';
import { CaptureRoutes } from './capture-routes.js';
import type { ToxiproxyApi } from '../toxiproxy/api.js';

export type { AdminRuntime, ConnectionInfo, StatsSnapshot } from './admin-runtime.js';

export interface AdminServerOptions {
  listen: { host: string; port: number };
  /** When set, every route but /healthz, /readyz and the dashboard page needs `Authorization: Bearer <token>`. */
  token?: string | undefined;
  runtime: AdminRuntime;
  logger: Logger;
  /** `admin.toxiproxy_api: true`: toxiproxy's API next to /api/* (behind the token too, when one is set). */
  toxiproxy?: ToxiproxyApi | undefined;
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

/** Bodies are small JSON documents (run-time changes); larger ones are refused outright rather than drained. */
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
  private readonly captures: CaptureRoutes;

  constructor(private readonly options: AdminServerOptions) {
    this.logger = options.logger;
    this.token = options.token === undefined || options.token === '' ? null : new BearerToken(options.token);
    this.captures = new CaptureRoutes(options.runtime.control, options.logger);
    this.router = new Router([...adminRoutes(options.runtime, dashboardPage, options.logger), ...this.captures.routes()]);
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
      const onListenError = (error: NodeJS.ErrnoException) => reject(listenError('admin', host, port, error));
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
  async close(): Promise<void> {
    await this.captures.close();
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
    const toxiproxy = this.options.toxiproxy;
    if (toxiproxy?.owns((req.url ?? '/').split('?')[0]!)) {
      if (this.token === null || this.token.accepts(req.headers.authorization)) return toxiproxy.handle(req, res);
      return this.send(res, errorReply(401, 'missing or wrong bearer token'));
    }
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
      // A body not read is discarded; closing afterwards keeps a large or endless one from being read.
      res.setHeader('Connection', 'close');
      if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return errorReply(413, 'request body too large');
    }
    try {
      return await this.dispatch(req);
    } finally {
      req.resume();
    }
  }

  private async dispatch(req: IncomingMessage): Promise<Reply> {
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const pathname = queryStart === -1 ? url : url.slice(0, queryStart);
    const match = pathname.startsWith('/') ? this.router.match(req.method ?? 'GET', pathname) : undefined;
    // Only a route that takes a body reads it, and only once the request is let in.
    const takesBody = match?.kind === 'found' && match.route.handler.body === true;
    if (!takesBody) req.resume();
    const refuse = (reply: Reply): Reply => {
      req.resume();
      return reply;
    };
    if (match === undefined) return errorReply(400, 'bad request target');
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
      return refuse(reply);
    }
    if (match.route.method !== 'GET' && !isSameOrigin(req.headers)) return refuse(errorReply(403, 'cross-origin request refused'));
    const query = new URLSearchParams(queryStart === -1 ? '' : url.slice(queryStart + 1));
    if (!takesBody) return handler.run({ params: match.params, query });
    const body = await readJsonBody(req);
    if (body.error !== undefined) return refuse(errorReply(body.status, body.error));
    return handler.run({ params: match.params, query, body: body.value });
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

/**
 * A JSON request body, up to MAX_BODY_BYTES. Only `application/json` is read: a cross-site
 * form cannot send that type without a CORS preflight, which this server never answers.
 */
async function readJsonBody(req: IncomingMessage): Promise<{ value: unknown; error?: undefined } | { error: string; status: number }> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') return { status: 415, error: 'expected Content-Type: application/json' };
  let text: string;
  try {
    text = await readBody(req, MAX_BODY_BYTES);
  } catch (error) {
    if (error instanceof BodyTooLargeError) return { status: 413, error: 'request body too large' };
    throw error;
  }
  if (text.trim() === '') return { status: 400, error: 'expected a JSON body' };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (error) {
    return { status: 400, error: `request body: invalid JSON (${(error as Error).message})` };
  }
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
