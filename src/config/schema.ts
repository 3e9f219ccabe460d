/**
 * The configuration schema: the contract's keys (snake_case), their defaults, and the
 * normalisation into the shapes the runtime uses (durations in ms, HOST:PORT parsed).
 * Validation errors carry key paths; `load.ts` turns them into one readable line each.
 */
import { z } from 'zod';
import { parseHostPort, type HostPort } from '../net/address.js';
import { cidrProblem } from '../admission/cidr.js';
import { scheduleProblem } from '../admission/schedule.js';
import { expectationProblem } from '../balancing/health-check.js';
import { filterSpecSchema, inspectSpecSchema } from './filter-schema.js';
import { byteSize, duration } from './units.js';
import { ACCESS_FIELDS } from '../observability/access-log.js';
import { syslogSchema } from '../observability/syslog-config.js';

const MIN_BUFFER = 1024;
const MAX_BUFFER = 16 * 1024 * 1024;
const bufferSize = byteSize.refine((bytes) => bytes >= MIN_BUFFER && bytes <= MAX_BUFFER, 'must be from 1KiB to 16MiB');

function hostPort(options: { allowPortZero?: boolean } = {}) {
  return z.string({ error: 'expected HOST:PORT' }).transform((text, ctx): HostPort => {
    const parsed = parseHostPort(text, options);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  });
}

const positiveInt = z.number().int().positive();
const count = z.number().int().nonnegative();

/** An upstream is "HOST:PORT" or an object; the string form is sugar for `{ address }`. */
export const upstream = z.preprocess(
  (value) => (typeof value === 'string' ? { address: value } : value),
  z.strictObject({
    address: hostPort(),
    weight: positiveInt.default(1),
    max_connections: positiveInt.optional(),
  }),
);

/** CIDRs or bare IPs, each checked here so that a typo is an exit-2 error naming its index. */
const cidrList = z
  .array(
    z.string().superRefine((text, ctx) => {
      const problem = cidrProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
  )
  .optional();

const scheduleWindow = z.strictObject({
  days: z.array(z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'])).min(1),
  from: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM'),
  to: z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'expected HH:MM'),
});

const access = z.strictObject({
  allow: cidrList,
  deny: cidrList,
  schedule: z
    .strictObject({
      timezone: z.string().default('UTC'),
      windows: z.array(scheduleWindow).min(1),
      enforce: z.enum(['none', 'close']).default('none'),
    })
    .superRefine((schedule, ctx) => {
      const problem = scheduleProblem(schedule);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

const healthCheck = z.strictObject({
  interval: duration.default(5_000),
  timeout: duration.default(1_000),
  healthy_threshold: positiveInt.default(2),
  unhealthy_threshold: positiveInt.default(3),
  send: z.string().optional(),
  // Checked here: an invalid regex used to pass --check and fail the start with a stack trace (#12 fuzzing).
  expect: z
    .string()
    .superRefine((text, ctx) => {
      const problem = expectationProblem(text);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
});

const proxyProtocol = z.strictObject({
  send: z.enum(['v1', 'v2']).optional(),
  accept: z.enum(['v1', 'v2', 'any']).optional(),
  trusted: cidrList,
  timeout: duration.default(5_000),
});

const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3']);

/** TLS termination: the proxy speaks TLS to clients and plaintext upstream. */
const tls = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
  ca: z.string().min(1).optional(),
  require_client_cert: z.boolean().optional(),
  min_version: tlsVersion.optional(),
});

/** TLS origination: the proxy speaks TLS to the upstreams. */
const upstreamTls = z.strictObject({
  ca: z.string().min(1).optional(),
  servername: z.string().min(1).optional(),
  verify: z.boolean().default(true),
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
});

const balance = z.enum(['round_robin', 'least_connections', 'random', 'source_hash']);

/** SNI routing (TLS passed through untouched): the first route whose pattern matches wins. */
const route = z.strictObject({
  sni: z.string().min(1),
  upstreams: z.array(upstream).min(1, 'at least one upstream is required'),
  balance: balance.optional(),
});

export const listenerSchema = z.strictObject({
  name: z.string().min(1).optional(),
  listen: hostPort({ allowPortZero: true }),
  upstreams: z.array(upstream).min(1, 'at least one upstream is required'),
  balance: balance.default('round_robin'),
  connect_timeout: duration.default(5_000),
  /** TLS handshake (tls) and ClientHello peek (routes); unset: connect_timeout, as before the key existed. */
  handshake_timeout: duration.optional(),
  connect_retries: count.default(2),
  idle_timeout: duration.default(600_000),
  /** Inactivity on one side while it owes data or an acknowledgement (HAProxy's timeout client/server); 0 = off. */
  client_timeout: duration.default(0),
  server_timeout: duration.default(0),
  max_lifetime: duration.default(0),
  /** Each direction's read buffer: bytes per read syscall (memory per busy connection: twice this). */
  buffer_size: bufferSize.default(256 * 1024),
  max_connections: positiveInt.optional(),
  max_connections_per_ip: positiveInt.optional(),
  // per > 0: a zero window passed the check and threw at start (#12 fuzzing).
  new_connections_per_ip: z.strictObject({ limit: positiveInt, per: duration.refine((ms) => ms > 0, 'must be more than 0ms') }).optional(),
  on_limit: z.enum(['reject', 'queue']).default('reject'),
  queue_timeout: duration.default(10_000),
  max_queue: positiveInt.default(1000),
  access: access.optional(),
  health_check: healthCheck.optional(),
  proxy_protocol: proxyProtocol.optional(),
  tls: tls.optional(),
  upstream_tls: upstreamTls.optional(),
  routes: z
    .array(route)
    .superRefine((routes, ctx) => {
      const seen = new Map<string, number>();
      routes.forEach((r, index) => {
        const first = seen.get(r.sni);
        if (first === undefined) seen.set(r.sni, index);
        else ctx.addIssue({ code: 'custom', path: [index, 'sni'], message: `"${r.sni}" is already routed by routes[${first}]` });
      });
    })
    .optional(),
  inspect: inspectSpecSchema.optional(),
  filters: z.array(filterSpecSchema).optional(),
  /** Every connection takes the filtered path, so that filters changed at run time reach it too. */
  live_filters: z.boolean().default(false),
  /** `cluster`: the three connection limits count across every process sharing the `cluster` Redis. */
  limits_scope: z.enum(['local', 'cluster']).default('local'),
});

// -- cluster: limits shared by several processes through Redis (src/cluster) ----------
/** `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS). */
const redisUrl = z.string().superRefine((text, ctx) => {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return void ctx.addIssue({ code: 'custom', message: `expected redis://HOST[:PORT][/DB] or rediss://..., got ${JSON.stringify(text)}` });
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    ctx.addIssue({ code: 'custom', message: `expected a redis:// or rediss:// URL, got ${JSON.stringify(url.protocol)}` });
  } else if (url.hostname === '') ctx.addIssue({ code: 'custom', message: 'the URL names no host' });
  else if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) {
    ctx.addIssue({ code: 'custom', message: `the path must be a database number (/0), got ${JSON.stringify(url.pathname)}` });
  }
});

const MIN_LEASE_MS = 1_000;

export const clusterSchema = z.strictObject({
  redis: redisUrl,
  prefix: z
    .string()
    .min(1)
    .regex(/^[^\s]+$/, 'must not contain white space')
    .default('tcpproxy'),
  /** While Redis cannot be reached (or does not answer within `timeout`): admit or refuse. */
  on_error: z.enum(['allow', 'deny']).default('allow'),
  /** The longest an admission waits for Redis before `on_error` decides. */
  timeout: duration.refine((ms) => ms > 0 && ms <= 10_000, 'must be from 1ms to 10s').default(100),
  /** A process's slots outlive it (SIGKILL, machine loss) by at most `lease` + `lease`/3. */
  lease: duration.refine((ms) => ms >= MIN_LEASE_MS && ms <= 600_000, 'must be from 1s to 10m').default(10_000),
});

/** The config's keys; `configSchema` adds the rules that span several of them. */
export const configShape = z.strictObject({
  admin: z
    .strictObject({
      listen: hostPort({ allowPortZero: true }).default({ host: '127.0.0.1', port: 9901 }),
      token: z.string().min(1).optional(),
      /** Also serve toxiproxy's HTTP API (/proxies, /populate, /reset, /version) here. */
      toxiproxy_api: z.boolean().default(false),
    })
    .optional(),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
      format: z.enum(['json', 'pretty']).optional(),
      // -- where logs go and what access-log lines hold (README "Logs") --
      file: z.string().min(1).optional(),
      syslog: syslogSchema.optional(),
      access_fields: z.array(z.enum(ACCESS_FIELDS)).min(1).optional(),
    })
    .prefault({}),
  shutdown_timeout: duration.default(30_000),
  pid_file: z.string().min(1).optional(),
  workers: z.union([positiveInt, z.literal('auto')]).default(1),
  listeners: z.array(listenerSchema).min(1, 'at least one listener is required'),
  cluster: clusterSchema.optional(),
});

export const configSchema = configShape.superRefine((config, ctx) => {
  config.listeners.forEach((listener, index) => {
    if (listener.limits_scope !== 'cluster') return;
    if (config.cluster === undefined) {
      ctx.addIssue({ code: 'custom', path: ['listeners', index, 'limits_scope'], message: 'cluster needs a top-level "cluster" block (cluster.redis)' });
    }
    // The wait queue is per process while the counts are shared: a slot freed elsewhere would
    // never wake a waiter here. Refuse the combination rather than queue unfairly.
    if (listener.on_limit === 'queue') {
      ctx.addIssue({
        code: 'custom',
        path: ['listeners', index, 'on_limit'],
        message: 'queue cannot be combined with limits_scope: cluster (the queue would be per instance); use reject',
      });
    }
  });
});

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ParsedListener = z.output<typeof listenerSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
