/**
 * Run-time control through the admin API: listeners created and removed, and live filters
 * (pipeline/live.ts) added, replaced and removed on a running listener without a reload.
 * A live filter acts on the listener's connections on the filtered path at once, open ones
 * included (see live.ts for which connections those are). Every change is logged.
 *
 *   GET    /api/listeners                        every listener, its address and live filters
 *   POST   /api/listeners                        a `listeners[]` config entry -> 201
 *   DELETE /api/listeners/{name}                 one created at run time (its connections close)
 *   GET    /api/listeners/{name}/filters         its live filters
 *   POST   /api/listeners/{name}/filters         a `filters[]` entry + optional name, toxicity -> 201
 *   POST   /api/listeners/{name}/filters/{filter}  replaces it (same body), in its place
 *   DELETE /api/listeners/{name}/filters/{filter}
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { ConfigError, formatKeyPath } from '../config/load.js';
import type { LiveFilter, LiveFilters } from '../pipeline/live.js';
import { planFilter } from '../pipeline/plan.js';
import { filterSpecSchema } from '../config/filter-schema.js';
import { ListenError } from '../proxy/listener.js';
import type { RuntimeControl } from './admin-runtime.js';
import { errorReply, jsonReply, type Reply } from './reply.js';
import type { AdminHandler, AdminRoute, RequestContext } from './routes.js';
import type { ErrorCode } from '../errors/errors.js';

const liveOptions = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  toxicity: z.number().min(0).max(1).default(1),
});

export function liveRoutes(control: RuntimeControl | undefined, logger: Logger): AdminRoute[] {
  const guarded = (run: (control: RuntimeControl, context: RequestContext) => Promise<Reply> | Reply, body = false): AdminHandler => ({
    open: false,
    body,
    run: (context) => (control ? run(control, context) : errorReply(501, 'run-time control needs workers: 1')),
  });
  const listenerFilters = (c: RuntimeControl, name: string): LiveFilters | Refusal =>
    c.liveFilters(name) ?? refuse(404, `unknown listener "${name}"`, 'unknown_listener');

  /** Adds a live filter (its name must be new), or replaces the one named in the path. */
  const writeFilter = async (c: RuntimeControl, { params, body }: RequestContext, action: 'add' | 'replace'): Promise<Reply> => {
    const live = listenerFilters(c, params.name!);
    if (live instanceof Refusal) return live.reply;
    if (action === 'replace' && !live.get(params.filter!)) return errorReply(404, `no live filter "${params.filter}" on listener "${params.name}"`);
    const filter = await readLiveFilter(body, c.baseDir(), (type) => uniqueName(live, type), params.filter);
    if (filter instanceof Refusal) return filter.reply;
    if (action === 'add') {
      if (live.get(filter.name)) return errorReply(409, `listener "${params.name}" has a live filter "${filter.name}" already`, 'live_filter_exists');
      live.add(filter);
    } else {
      live.replace(filter);
    }
    logger.info({ event: 'live_filter', action, listener: params.name, filter: filter.spec }, `live filter ${action === 'add' ? 'added' : 'replaced'}`);
    return jsonReply(action === 'add' ? 201 : 200, filter.spec);
  };

  return [
    { method: 'GET', path: '/api/listeners', handler: guarded((c) => jsonReply(200, c.listeners())) },
    {
      method: 'POST',
      path: '/api/listeners',
      handler: guarded(async (c, { body }) => {
        try {
          const bound = await c.addListener(body);
          return jsonReply(201, { ok: true, name: (body as { name: string }).name, ...bound });
        } catch (error) {
          if (error instanceof ConfigError) return errorReply(error.message.includes('exists already') ? 409 : 400, error.problems.join('; '), error.code);
          if (error instanceof ListenError) return errorReply(409, error.message, error.code);
          throw error;
        }
      }, true),
    },
    {
      method: 'DELETE',
      path: '/api/listeners/:name',
      handler: guarded(async (c, { params }) => {
        const name = params.name!;
        const result = await c.removeListener(name);
        if (result === 'unknown') return errorReply(404, `unknown listener "${name}"`, 'unknown_listener');
        if (result === 'configured') return errorReply(409, `listener "${name}" is in the config file: remove it there and reload`);
        return jsonReply(200, { ok: true, removed: name });
      }),
    },
    {
      method: 'GET',
      path: '/api/listeners/:name/filters',
      handler: guarded((c, { params }) => {
        const live = listenerFilters(c, params.name!);
        return live instanceof Refusal
          ? live.reply
          : jsonReply(
              200,
              live.list().map((f) => f.spec),
            );
      }),
    },
    { method: 'POST', path: '/api/listeners/:name/filters', handler: guarded((c, request) => writeFilter(c, request, 'add'), true) },
    { method: 'POST', path: '/api/listeners/:name/filters/:filter', handler: guarded((c, request) => writeFilter(c, request, 'replace'), true) },
    {
      method: 'DELETE',
      path: '/api/listeners/:name/filters/:filter',
      handler: guarded((c, { params }) => {
        const live = listenerFilters(c, params.name!);
        if (live instanceof Refusal) return live.reply;
        if (!live.remove(params.filter!)) return errorReply(404, `no live filter "${params.filter}" on listener "${params.name}"`);
        logger.info({ event: 'live_filter', action: 'remove', listener: params.name, filter: params.filter }, 'live filter removed');
        return jsonReply(200, { ok: true, removed: params.filter });
      }),
    },
  ];
}

/** A `filters[]` entry (as in the config) with an optional `name` and `toxicity`. */
async function readLiveFilter(raw: unknown, baseDir: string, defaultName: (type: string) => string, fixedName?: string): Promise<LiveFilter | Refusal> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return refuse(400, 'expected a JSON object (a filters[] entry)');
  const { name, toxicity, ...entry } = raw as Record<string, unknown>;
  const options = liveOptions.safeParse({ name, toxicity });
  const spec = filterSpecSchema.safeParse(entry);
  const issues = [...(options.error?.issues ?? []), ...(spec.error?.issues ?? [])];
  if (!options.success || !spec.success) return refuse(400, issues.map((i) => `${formatKeyPath(i.path)}: ${i.message}`).join('; '));
  let plan;
  try {
    plan = await planFilter(spec.data, baseDir);
  } catch (error) {
    return refuse(400, (error as Error).message);
  }
  const filterName = fixedName ?? options.data.name ?? defaultName(spec.data.type);
  return {
    name: filterName,
    toxicity: options.data.toxicity,
    plan: { ...plan, name: filterName },
    spec: { name: filterName, toxicity: options.data.toxicity, ...entry },
  };
}

function uniqueName(live: LiveFilters, type: string): string {
  for (let n = 1; ; n++) if (!live.get(`${type}-${n}`)) return `${type}-${n}`;
}

/** A request answered before its handler could run (bad JSON, unknown listener): never user data. */
class Refusal {
  constructor(readonly reply: Reply) {}
}

function refuse(status: number, error: string, code?: ErrorCode): Refusal {
  return new Refusal(errorReply(status, error, code));
}
