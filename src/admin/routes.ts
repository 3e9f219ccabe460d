/**
 * The admin API: each route maps a request onto one AdminRuntime call. Routes marked `open`
 * answer without the bearer token: the liveness/readiness probes (they reveal nothing and
 * probes rarely carry credentials) and the dashboard page itself (static; every figure it
 * shows comes from the token-protected API, and the page asks for the token).
 */
import type { Logger } from 'pino';
import type { AdminRuntime, UpstreamAction } from './admin-runtime.js';
import { parseConnectionQuery, selectConnections } from './connections-query.js';
import { liveRoutes } from './live-routes.js';
import type { Route, Params } from './router.js';
import { errorReply, jsonReply, textReply, type Reply } from './reply.js';
import type { DashboardPage } from './dashboard/page.js';

export interface RequestContext {
  params: Params;
  query: URLSearchParams;
  /** The request body (text), for handlers with `readsBody`; '' otherwise. */
  body: string;
}

export interface AdminHandler {
  open: boolean;
  readsBody?: boolean;
  run(context: RequestContext): Promise<Reply> | Reply;
}

export type AdminRoute = Route<AdminHandler>;

export function adminRoutes(runtime: AdminRuntime, dashboard: DashboardPage, logger: Logger): AdminRoute[] {
  const open = (run: AdminHandler['run']): AdminHandler => ({ open: true, run });
  const guarded = (run: AdminHandler['run']): AdminHandler => ({ open: false, run });

  const upstreamAction = (action: UpstreamAction) =>
    guarded(async ({ params }) => {
      const listener = params.listener as string;
      const address = params.address as string;
      const result = await runtime.upstreamAction(listener, address, action);
      if (result === 'unknown_listener') return errorReply(404, `unknown listener "${listener}"`);
      if (result === 'unknown_upstream') return errorReply(404, `unknown upstream "${address}" in listener "${listener}"`);
      logger.info({ event: 'admin', action, listener, upstream: address }, `upstream ${action}`);
      return jsonReply(200, { ok: true, listener, upstream: address, action });
    });

  return [
    { method: 'GET', path: '/healthz', handler: open(() => textReply(200, 'ok')) },
    {
      method: 'GET',
      path: '/readyz',
      handler: open(async () => ((await runtime.ready()) ? textReply(200, 'ready') : textReply(503, 'not ready'))),
    },
    {
      method: 'GET',
      path: '/',
      handler: open(() => ({
        status: 200,
        contentType: 'text/html; charset=utf-8',
        body: dashboard.html,
        headers: { 'Content-Security-Policy': dashboard.contentSecurityPolicy },
      })),
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: guarded(async () => {
        const { contentType, body } = await runtime.metrics();
        return { status: 200, contentType, body };
      }),
    },
    { method: 'GET', path: '/api/stats', handler: guarded(async () => jsonReply(200, await runtime.stats())) },
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
        const id = params.id as string;
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
        return result.ok ? jsonReply(200, result) : jsonReply(400, result);
      }),
    },
    ...liveRoutes(runtime.control, logger),
    { method: 'POST', path: '/api/upstreams/:listener/:address/drain', handler: upstreamAction('drain') },
    { method: 'POST', path: '/api/upstreams/:listener/:address/enable', handler: upstreamAction('enable') },
  ];
}
