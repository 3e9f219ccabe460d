/**
 * The query string of GET /api/connections: `listener=NAME` filters, `sort=bytes|age` orders
 * (largest first), `limit=N` keeps the first N. The dashboard asks for `sort=bytes&limit=10`;
 * with many thousands of connections an operator wants the same.
 */
import type { ConnectionInfo } from './admin-runtime.js';

export interface ConnectionQuery {
  listener: string | null;
  sort: 'bytes' | 'age' | null;
  limit: number | null;
}

const MAX_LIMIT = 1_000_000;

export function parseConnectionQuery(params: URLSearchParams): ConnectionQuery | { error: string } {
  for (const key of params.keys()) {
    if (key !== 'listener' && key !== 'sort' && key !== 'limit') return { error: `unknown query parameter "${key}"` };
  }
  const sort = params.get('sort');
  if (sort !== null && sort !== 'bytes' && sort !== 'age') return { error: 'sort: expected "bytes" or "age"' };
  const limitText = params.get('limit');
  let limit: number | null = null;
  if (limitText !== null) {
    limit = /^\d{1,7}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIMIT)) return { error: `limit: expected an integer from 1 to ${MAX_LIMIT}` };
  }
  return { listener: params.get('listener'), sort, limit };
}

export function selectConnections(all: readonly ConnectionInfo[], query: ConnectionQuery): ConnectionInfo[] {
  let selected = query.listener === null ? [...all] : all.filter((c) => c.listener === query.listener);
  if (query.sort === 'bytes') selected.sort((a, b) => totalBytes(b) - totalBytes(a));
  else if (query.sort === 'age') selected.sort((a, b) => b.age_ms - a.age_ms);
  if (query.limit !== null) selected = selected.slice(0, query.limit);
  return selected;
}

function totalBytes(connection: ConnectionInfo): number {
  return connection.bytes_from_client + connection.bytes_to_client;
}
