/**
 * The admin API: each route maps a request onto one AdminRuntime call. Routes marked `open`
 * answer without the bearer token: the liveness/readiness probes (they reveal nothing and
 * probes rarely carry credentials) and the dashboard page itself (static; every figure it
 * shows comes from the token-protected API, and the page asks for the token).
 */
import type { Logger } from 'pino';
import type { AdminRuntime, UpstreamAction, UpstreamChange } from './admin-runtime.js';
import { parseConnectionQuery, selectConnections } from './connections-query.js';
import { liveRoutes } from './live-routes.js';
import type { Route, Params } from '../http/router.js';
import { errorReply, jsonReply, textReply, type Reply } from './reply.js';
import type { StatsPayload } from './api-payloads.js';
import type { DashboardPage } from './dashboard/page.js';
import { parseAddRequest, parseUpdateRequest } from './upstream-requests.js';
import type { ErrorCode } from '../errors/errors.js';

export interface RequestContext {
  params: Params;
  query: URLSearchParams;
  /** The parsed JSON body, for handlers that take one (`body: true`). */
  body?: unknown;
}

export interface AdminHandler {
  open: boolean;
  /** Reads a JSON body (Content-Type application/json); other routes discard theirs. */
  body?: boolean;
  run(context: RequestContext): Promise<Reply> | Reply;
}

export type AdminRoute = Route<AdminHandler>;

/** HTTP status per refusal code of a run-time upstream change; any other code is a 409. */
const CHANGE_REFUSED_STATUS: Record<string, number> = {
  unknown_listener: 404,
  unknown_upstream: 404,
  invalid_settings: 400,
  unresolvable: 422,
};

export function adminRoutes(runtime: AdminRuntime, dashboard: () => Promise<DashboardPage>, logger: Logger): AdminRoute[] {
  const open = (run: AdminHandler['run']): AdminHandler => ({ open: true, run });
  const guarded = (run: AdminHandler['run']): AdminHandler => ({ open: false, run });

  const upstreamAction = (action: UpstreamAction) =>
    guarded(async ({ params }) => {
      const listener = params.listener!;
      const address = params.address!;
      const result = await runtime.upstreamAction(listener, address, action);
      if (result === 'unknown_listener') return errorReply(404, `unknown listener "${listener}"`, 'unknown_listener');
      if (result === 'unknown_upstream') return errorReply(404, `unknown upstream "${address}" in listener "${listener}"`, 'unknown_upstream');
      logger.info({ event: 'admin', action, listener, upstream: address }, `upstream ${action}`);
      return jsonReply(200, { ok: true, listener, upstream: address, action });
    });

  // Run-time upstream management: one log line per change made.
  const changeUpstream = async (listener: string, change: UpstreamChange | string, created = false): Promise<Reply> => {
    if (typeof change === 'string') return errorReply(400, change);
    const result = await runtime.changeUpstream(listener, change);
    if (!result.ok) return jsonReply(CHANGE_REFUSED_STATUS[result.code] ?? 409, { error: result.error, code: result.code });
    const { upstream } = result;
    logger.info(
      {
        event: 'admin',
        action: `upstream_${change.op}`,
        listener,
        upstream: upstream.address,
        weight: upstream.weight,
        max_connections: upstream.max_connections,
      },
      `upstream ${change.op} ${upstream.address} on listener "${listener}"` +
        (change.op === 'remove' ? '' : ` (weight ${upstream.weight}, max_connections ${upstream.max_connections ?? 'unlimited'})`),
    );
    return jsonReply(created ? 201 : 200, { ok: true, listener, upstream });
  };
  const withBody = (run: AdminHandler['run']): AdminHandler => ({ open: false, body: true, run });

  return [
    {
      method: 'GET',
      path: '/api/listeners/:listener/upstreams',
      handler: guarded(async ({ params }) => {
        const upstreams = await runtime.listUpstreams(params.listener!);
        return upstreams ? jsonReply(200, upstreams) : errorReply(404, `unknown listener "${params.listener}"`, 'unknown_listener');
      }),
    },
    {
      method: 'POST',
      path: '/api/listeners/:listener/upstreams',
      handler: withBody(({ params, body }) => changeUpstream(params.listener!, parseAddRequest(body), true)),
    },
    {
      method: 'PATCH',
      path: '/api/listeners/:listener/upstreams/:address',
      handler: withBody(({ params, body }) => changeUpstream(params.listener!, parseUpdateRequest(params.address!, body))),
    },
    {
      method: 'DELETE',
      path: '/api/listeners/:listener/upstreams/:address',
      handler: guarded(({ params }) => changeUpstream(params.listener!, { op: 'remove', address: params.address! })),
    },
    { method: 'GET', path: '/healthz', handler: open(() => textReply(200, 'ok')) },
    {
      method: 'GET',
      path: '/readyz',
      handler: open(async () => ((await runtime.ready()) ? textReply(200, 'ready') : textReply(503, 'not ready'))),
    },
    {
      method: 'GET',
      path: '/',
      handler: open(async () => {
        const page = await dashboard();
        return {
          status: 200,
          contentType: 'text/html; charset=utf-8',
          body: page.html,
          headers: { 'Content-Security-Policy': page.contentSecurityPolicy },
        };
      }),
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: guarded(async () => {
        const { contentType, body } = await runtime.metrics();
        return { status: 200, contentType, body };
      }),
    },
    { method: 'GET', path: '/api/stats', handler: guarded(async () => jsonReply(200, (await runtime.stats()) satisfies StatsPayload)) },
    {
      method: 'GET',
      path: '/api/connections',
      handler: guarded(async ({ query }) => {
        const parsed = parseConnectionQuery(query);
        if ('error' in parsed) return errorReply(400, parsed.error);
        return jsonReply(200, selectConnections(await runtime.connections(), parsed));
      }),
    },
    {
      method: 'DELETE',
      path: '/api/connections/:id',
      handler: guarded(async ({ params }) => {
        const id = params.id!;
        if (!(await runtime.closeConnection(id))) return errorReply(404, `no connection "${id}"`);
        logger.info({ event: 'admin', action: 'close', id }, 'connection closed by admin');
        return jsonReply(200, { ok: true, closed: id });
      }),
    },
    {
      method: 'POST',
      path: '/api/reload',
      handler: guarded(async () => {
        const result = await runtime.reload();
        return result.ok ? jsonReply(200, result) : jsonReply(400, { ...result, code: 'reload_failed' satisfies ErrorCode });
      }),
    },
    {
      method: 'POST',
      path: '/api/stop',
      handler: guarded(() => {
        if (!runtime.requestStop) return errorReply(409, 'this process cannot be stopped through the API');
        logger.info({ event: 'admin', action: 'stop' }, 'stop requested over the admin API');
        // The reply goes out before the listeners close: the caller then waits for the endpoint to go away.
        setImmediate(() => runtime.requestStop!());
        return jsonReply(202, { ok: true, pid: process.pid });
      }),
    },
    {
      method: 'POST',
      path: '/api/upgrade',
      handler: guarded(async () => {
        if (!runtime.upgrade) return errorReply(409, 'upgrade needs --workers N (a single process cannot replace itself without closing its listeners)');
        const result = await runtime.upgrade();
        return result.ok ? jsonReply(200, result) : jsonReply(500, { ...result, code: 'worker_upgrade' satisfies ErrorCode });
      }),
    },
    ...liveRoutes(runtime.control, logger),
    { method: 'POST', path: '/api/upstreams/:listener/:address/drain', handler: upstreamAction('drain') },
    { method: 'POST', path: '/api/upstreams/:listener/:address/enable', handler: upstreamAction('enable') },
  ];
}
