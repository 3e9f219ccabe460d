/**
 * A minimal path router: literal segments and `:name` parameters. It tells apart "no such
 * path" (404), "path exists, other method" (405 with the allowed methods) and "undecodable
 * path" (400), which is all the admin API needs; a framework would be more code to trust.
 */
export type Params = Record<string, string>;

export interface Route<H> {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** e.g. "/api/connections/:id" */
  path: string;
  handler: H;
}

export type RouteMatch<H> =
  { kind: 'found'; route: Route<H>; params: Params } | { kind: 'not_found' } | { kind: 'method_not_allowed'; allow: string[] } | { kind: 'bad_path' };

interface CompiledRoute<H> {
  route: Route<H>;
  segments: string[];
}

export class Router<H> {
  private readonly routes: CompiledRoute<H>[];

  constructor(routes: readonly Route<H>[]) {
    this.routes = routes.map((route) => ({ route, segments: route.path.split('/') }));
  }

  /** `pathname` is the raw (still percent-encoded) path; HEAD is answered by GET routes. */
  match(method: string, pathname: string): RouteMatch<H> {
    let segments: string[];
    try {
      // Split before decoding, so that an encoded "/" (%2F) stays inside its segment.
      segments = pathname.split('/').map(decodeURIComponent);
    } catch {
      return { kind: 'bad_path' };
    }
    const wanted = method === 'HEAD' ? 'GET' : method;
    const allow: string[] = [];
    for (const compiled of this.routes) {
      const params = matchSegments(compiled.segments, segments);
      if (params === null) continue;
      if (compiled.route.method === wanted) return { kind: 'found', route: compiled.route, params };
      allow.push(compiled.route.method);
    }
    return allow.length > 0 ? { kind: 'method_not_allowed', allow } : { kind: 'not_found' };
  }
}

function matchSegments(pattern: readonly string[], actual: readonly string[]): Params | null {
  if (pattern.length !== actual.length) return null;
  const params: Params = {};
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i]!;
    const value = actual[i]!;
    if (expected.startsWith(':')) {
      if (value === '') return null;
      params[expected.slice(1)] = value;
    } else if (expected !== value) {
      return null;
    }
  }
  return params;
}
