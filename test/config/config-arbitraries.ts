/**
 * Generators for the config fuzzers: a config that uses every section, the values a user
 * might write into it, and mutations of it.
 */
import fc from 'fast-check';

/** A config touching every section the schema knows (no files: certificates and plugins are other tests'). */
export const FULL = {
  admin: { listen: '127.0.0.1:0', token: 'secret' },
  log: { level: 'info', format: 'json' },
  shutdown_timeout: '30s',
  workers: 1,
  listeners: [
    {
      name: 'main',
      listen: '127.0.0.1:0',
      upstreams: ['127.0.0.1:9000', { address: '[::1]:9001', weight: 3, max_connections: 100 }],
      balance: 'least_connections',
      connect_timeout: '5s',
      connect_retries: 2,
      idle_timeout: '5m',
      max_lifetime: '1h',
      buffer_size: '64KiB',
      max_connections: 1000,
      max_connections_per_ip: 50,
      new_connections_per_ip: { limit: 20, per: '1s' },
      on_limit: 'queue',
      queue_timeout: '10s',
      max_queue: 10,
      access: {
        allow: ['10.0.0.0/8', '::1', '127.0.0.1'],
        deny: ['10.9.0.0/16'],
        schedule: { timezone: 'Europe/Paris', windows: [{ days: ['mon', 'fri'], from: '08:00', to: '18:30' }], enforce: 'close' },
      },
      health_check: { interval: '5s', timeout: '1s', healthy_threshold: 2, unhealthy_threshold: 3, send: 'PING\r\n', expect: '/^\\+PONG/i' },
      proxy_protocol: { send: 'v2', accept: 'any', trusted: ['127.0.0.0/8'], timeout: '2s' },
      inspect: { log_data: 'hex' },
      filters: [
        { type: 'replace', direction: 'to_upstream', match: 'foo', with: 'bar' },
        { type: 'replace', direction: 'to_client', match: '/b(a+)r/i', with: '$1', max_match: 64, hold: '20ms' },
        { type: 'block', direction: 'to_upstream', match: 'DROP TABLE' },
        { type: 'throttle', direction: 'to_client', bytes_per_second: 1048576, burst: '64KiB' },
        { type: 'delay', direction: 'both', latency: '50ms', jitter: '5ms' },
        { type: 'reset_after', direction: 'to_client', bytes: 1000 },
        { type: 'slice', direction: 'to_upstream', size: 10, delay: '1ms' },
        { type: 'drop_connection_probability', probability: 0.5 },
      ],
    },
    {
      name: 'sni',
      listen: '[::1]:0',
      upstreams: ['127.0.0.1:9443'],
      routes: [{ sni: '*.example.com', upstreams: ['127.0.0.1:9444'], balance: 'random' }],
    },
  ],
};

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value in `doc` (the empty path is the document itself). */
export function paths(doc: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const out = [prefix];
  if (Array.isArray(doc)) doc.forEach((item, i) => out.push(...paths(item, [...prefix, i])));
  else if (doc !== null && typeof doc === 'object') for (const [key, value] of Object.entries(doc)) out.push(...paths(value, [...prefix, key]));
  return out;
}

export type Mutation = { kind: 'set'; value: Json } | { kind: 'delete' } | { kind: 'rename'; key: string } | { kind: 'add'; key: string; value: Json };

/** Applies one mutation at `path` of a deep copy of `doc`. */
export function mutate(doc: Json, path: (string | number)[], mutation: Mutation): Json {
  if (path.length === 0) return mutation.kind === 'set' ? mutation.value : doc;
  const copy = structuredClone(doc) as Record<string | number, Json>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  const value = parent[last]!;
  switch (mutation.kind) {
    case 'set':
      parent[last] = mutation.value;
      break;
    case 'delete':
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
      break;
    case 'rename':
      if (Array.isArray(parent)) return copy;
      delete parent[last];
      parent[mutation.key] = value;
      break;
    case 'add':
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) (value as Record<string, Json>)[mutation.key] = mutation.value;
      else if (Array.isArray(value)) value.push(mutation.value);
      break;
  }
  return copy;
}

/** Values a user might plausibly write, wrong or right. */
export const PLAUSIBLE_VALUES: readonly Json[] = [
  '',
  '0',
  '-1',
  '1.5',
  '5s',
  '5 s',
  '-5s',
  '30d',
  '1e400',
  'NaN',
  'forever',
  '99999999999999999999h',
  '1KiB',
  '1 MiB',
  '0B',
  '17MiB',
  '127.0.0.1',
  '127.0.0.1:99999',
  '[::1]:0',
  ':80',
  'localhost:0',
  '[zz]:1',
  '0.0.0.0/33',
  '::/0',
  '10.0.0.0/8',
  '/(/',
  '/a/gg',
  '/^$/',
  '/(?=x)/',
  '/a/x',
  '//',
  '/\\b/',
  'Mars/Olympus',
  '25:00',
  '24:00',
  'tue',
  'v1',
  'v3',
  'queue',
  'auto',
  'TLSv1.1',
  './x.js',
  'file:///nonexistent/p.js',
  '$1',
  'é',
  0,
  -1,
  1,
  1.5,
  2 ** 31,
  2 ** 53 + 1,
  1e308,
  -0,
  true,
  false,
  null,
  [],
  {},
  [null],
  { '': null },
];

/** ...and arbitrary JSON. */
export const plausibleValue: fc.Arbitrary<Json> = fc.oneof(fc.constantFrom(...PLAUSIBLE_VALUES), fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>);

export const keyName = fc.oneof(
  fc.constantFrom('listen', 'upstreams', 'type', 'match', 'module', '__proto__', 'constructor', 'toString', 'address', 'sni'),
  fc.string({ maxLength: 12 }),
);

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), value: plausibleValue }),
  fc.record({ kind: fc.constant('delete' as const) }),
  fc.record({ kind: fc.constant('rename' as const), key: keyName }),
  fc.record({ kind: fc.constant('add' as const), key: keyName, value: plausibleValue }),
);

export const ALL_PATHS = paths(FULL as unknown as Json);

/** One to three mutations of the full config. */
export const mutatedConfig: fc.Arbitrary<Json> = fc.array(fc.tuple(fc.nat(ALL_PATHS.length - 1), mutation), { minLength: 1, maxLength: 3 }).map((steps) =>
  steps.reduce<Json>(
    (doc, [index, step]) => {
      // Paths are taken from the original; one that a previous step removed is skipped.
      const path = ALL_PATHS[index]!;
      try {
        return mutate(doc, path, step);
      } catch {
        return doc;
      }
    },
    FULL as unknown as Json,
  ),
);
