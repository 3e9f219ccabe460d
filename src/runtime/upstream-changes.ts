/**
 * Run-time upstream management (the admin API's /api/listeners/{name}/upstreams): one change
 * applied to a listener's pool, and the pool shown as the API answers it. The pool does the
 * work (src/balancing/upstream-pool.ts); this turns its answers and refusals into plain JSON,
 * which also crosses the IPC channel to workers unchanged.
 */
import type { UpstreamChange, UpstreamChangeResult, UpstreamView } from '../admin/admin-runtime.js';
import type { Endpoint } from '../balancing/endpoint.js';
import { UpstreamChangeError, type UpstreamPool, type UpstreamSpec } from '../balancing/upstream-pool.js';

export function upstreamViews(pool: UpstreamPool): UpstreamView[] {
  return pool.upstreams().map((spec) =>
    view(
      spec,
      pool.endpoints().filter((endpoint) => endpoint.upstream === spec.address),
    ),
  );
}

export async function applyUpstreamChange(pool: UpstreamPool, change: UpstreamChange): Promise<UpstreamChangeResult> {
  try {
    switch (change.op) {
      case 'add': {
        const spec: UpstreamSpec = {
          address: change.address,
          host: change.host,
          port: change.port,
          weight: change.weight,
          ...(change.max_connections !== undefined && { maxConnections: change.max_connections }),
        };
        await pool.addUpstream(spec);
        return { ok: true, upstream: findView(pool, spec.address) };
      }
      case 'update': {
        const spec = pool.updateUpstream(change.address, {
          ...(change.weight !== undefined && { weight: change.weight }),
          ...(change.max_connections !== undefined && { maxConnections: change.max_connections }),
        });
        return { ok: true, upstream: findView(pool, spec.address) };
      }
      case 'remove': {
        const { upstream, endpoints } = pool.removeUpstream(change.address);
        // Its endpoints are out of the pool; the connections still finishing on them show as "removed".
        return { ok: true, upstream: view(upstream, endpoints, 'removed') };
      }
    }
  } catch (error) {
    if (error instanceof UpstreamChangeError) return { ok: false, code: error.code, error: error.message };
    throw error;
  }
}

function findView(pool: UpstreamPool, address: string): UpstreamView {
  return upstreamViews(pool).find((upstream) => upstream.address === address)!;
}

function view(spec: UpstreamSpec, endpoints: readonly Endpoint[], state?: string): UpstreamView {
  return {
    address: spec.address,
    weight: spec.weight,
    max_connections: spec.maxConnections ?? null,
    endpoints: endpoints.map((endpoint) => ({ address: endpoint.label, state: state ?? endpoint.state, active: endpoint.active })),
  };
}
