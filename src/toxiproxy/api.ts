/**
 * toxiproxy 2.x's HTTP API over a ToxiproxyCollection: the same paths, JSON shapes and
 * status codes, so that its client libraries work unchanged. Served by
 * `tcpproxy toxiproxy-server`, and on the admin endpoint with `admin.toxiproxy_api: true`.
 *
 * As toxiproxy does, requests from browsers (a User-Agent starting "Mozilla/") are refused:
 * the API has no authentication of its own, and a web page must not be able to drive it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { BodyTooLargeError, readBody } from '../http/body.js';
import { Router, type Params } from '../http/router.js';
import { VERSION } from '../observability/version.js';
import { ApiError } from './api-error.js';
import type { ToxiproxyCollection } from './proxies.js';

/** The toxiproxy release whose API this one follows (what GET /version reports). */
export const TOXIPROXY_API_VERSION = '2.12.0';

const MAX_BODY_BYTES = 1024 * 1024;

interface Request {
  readonly params: Params;
  /** The body as JSON; a body that is not JSON is a 400 ("bad request body"). */
  json(): unknown;
}

interface Answer {
  readonly status: number;
  readonly body?: unknown;
}

type Handler = (request: Request) => Answer | Promise<Answer>;

const PATHS = /^\/(version|reset|populate|proxies)(\/|$)/;

export class ToxiproxyApi {
  private readonly router: Router<Handler>;

  constructor(
    private readonly collection: ToxiproxyCollection,
    private readonly logger: Logger,
  ) {
    this.router = new Router<Handler>(this.routes());
  }

  /** Whether a path is this API's (the admin endpoint asks before its own routes). */
  owns(pathname: string): boolean {
    return PATHS.test(pathname);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let answer: Answer;
    try {
      answer = await this.answer(req);
    } catch (error) {
      if (!(error instanceof ApiError)) this.logger.error({ err: error, method: req.method, url: req.url }, 'toxiproxy API request failed');
      answer = error instanceof ApiError ? { status: error.status, body: error } : { status: 500, body: new ApiError('internal error', 500) };
    }
    if (res.headersSent || res.destroyed) return;
    if (answer.body === undefined) {
      res.writeHead(answer.status).end();
      return;
    }
    const text = `${JSON.stringify(answer.body)}\n`;
    res.writeHead(answer.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
  }

  private async answer(req: IncomingMessage): Promise<Answer> {
    if ((req.headers['user-agent'] ?? '').startsWith('Mozilla/')) throw new ApiError('User agent not allowed', 403);
    const url = req.url ?? '/';
    const queryStart = url.indexOf('?');
    const match = this.router.match(req.method ?? 'GET', queryStart === -1 ? url : url.slice(0, queryStart));
    if (match.kind === 'bad_path') throw new ApiError('malformed percent-encoding in path', 400);
    if (match.kind === 'not_found') throw new ApiError('not found', 404);
    if (match.kind === 'method_not_allowed') throw new ApiError('method not allowed', 405);
    const text = await readBody(req, MAX_BODY_BYTES).catch((error: unknown) => {
      throw error instanceof BodyTooLargeError ? new ApiError('request body too large', 413) : error;
    });
    return match.route.handler({
      params: match.params,
      json() {
        if (text.trim() === '') throw ApiError.badBody('EOF');
        try {
          return JSON.parse(text) as unknown;
        } catch (error) {
          throw ApiError.badBody((error as Error).message);
        }
      },
    });
  }

  private routes() {
    const c = this.collection;
    const proxy = ({ params }: Request): string => params.proxy!;
    const ok = (body: unknown): Answer => ({ status: 200, body });
    const noContent: Answer = { status: 204 };
    const both = (path: string, handler: Handler) => (['POST', 'PATCH'] as const).map((method) => ({ method, path, handler }));
    return [
      { method: 'GET' as const, path: '/version', handler: () => ok({ version: TOXIPROXY_API_VERSION, tcpproxy: VERSION }) },
      { method: 'POST' as const, path: '/reset', handler: async () => (await c.reset(), noContent) },
      { method: 'GET' as const, path: '/proxies', handler: () => ok(Object.fromEntries(c.list().map((p) => [p.name, p]))) },
      { method: 'POST' as const, path: '/proxies', handler: async (r: Request) => ({ status: 201, body: await c.create(r.json()) }) },
      {
        method: 'POST' as const,
        path: '/populate',
        handler: async (r: Request) => {
          const { proxies, error } = await c.populate(r.json());
          return error ? { status: error.status, body: { ...error.toJSON(), proxies } } : { status: 201, body: { proxies } };
        },
      },
      { method: 'GET' as const, path: '/proxies/:proxy', handler: (r: Request) => ok(c.show(proxy(r))) },
      ...both('/proxies/:proxy', async (r) => ok(await c.update(proxy(r), r.json()))),
      { method: 'DELETE' as const, path: '/proxies/:proxy', handler: async (r: Request) => (await c.remove(proxy(r)), noContent) },
      { method: 'GET' as const, path: '/proxies/:proxy/toxics', handler: (r: Request) => ok(c.toxics(proxy(r))) },
      { method: 'POST' as const, path: '/proxies/:proxy/toxics', handler: (r: Request) => ok(c.addToxic(proxy(r), r.json())) },
      { method: 'GET' as const, path: '/proxies/:proxy/toxics/:toxic', handler: (r: Request) => ok(c.toxic(proxy(r), r.params.toxic!)) },
      ...both('/proxies/:proxy/toxics/:toxic', (r) => ok(c.updateToxic(proxy(r), r.params.toxic!, r.json()))),
      {
        method: 'DELETE' as const,
        path: '/proxies/:proxy/toxics/:toxic',
        handler: (r: Request) => (c.removeToxic(proxy(r), r.params.toxic!), noContent),
      },
    ];
  }
}
