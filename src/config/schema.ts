/**
 * The configuration schema: the contract's keys (snake_case), their defaults, and the
 * normalisation into the shapes the runtime uses (durations in ms, HOST:PORT parsed).
 * Validation errors carry key paths; `load.ts` turns them into one readable line each.
 */
import { z } from 'zod';
import { parseHostPort, type HostPort } from './host-port.js';
import { cidrProblem } from '../admission/cidr.js';
import { scheduleProblem } from '../admission/schedule.js';
import { byteSize, duration, filterSpecSchema, inspectSpecSchema } from '../filters/schema.js';

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
const upstream = z.preprocess(
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
  expect: z.string().optional(),
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
  max_lifetime: duration.default(0),
  /** Each direction's read buffer: bytes per read syscall (memory per busy connection: twice this). */
  buffer_size: bufferSize.default(256 * 1024),
  max_connections: positiveInt.optional(),
  max_connections_per_ip: positiveInt.optional(),
  new_connections_per_ip: z.strictObject({ limit: positiveInt, per: duration }).optional(),
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
});

export const configSchema = z.strictObject({
  admin: z
    .strictObject({
      listen: hostPort({ allowPortZero: true }).default({ host: '127.0.0.1', port: 9901 }),
      token: z.string().min(1).optional(),
    })
    .optional(),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('info'),
      format: z.enum(['json', 'pretty']).optional(),
    })
    .prefault({}),
  shutdown_timeout: duration.default(30_000),
  workers: z.union([positiveInt, z.literal('auto')]).default(1),
  listeners: z.array(listenerSchema).min(1, 'at least one listener is required'),
});

export type RawConfig = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
export type ParsedListener = z.output<typeof listenerSchema>;
