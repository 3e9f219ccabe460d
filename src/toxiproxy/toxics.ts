/**
 * toxiproxy's toxics, read from its JSON (`{name, type, stream, toxicity, attributes}`) and
 * made into live filters (pipeline/live.ts) from tcpproxy's own filters:
 *
 *   latency     -> delay (latency ± jitter ms per chunk, order kept)
 *   bandwidth   -> throttle (rate KB/s = rate * 1000 bytes/s; 0 = unlimited)
 *   slow_close  -> slow-close (the FIN waits `delay` ms)
 *   timeout     -> hold (nothing passes; closed after `timeout` ms, never with 0)
 *   reset_peer  -> reset-after (first chunk dropped, TCP reset `timeout` ms later)
 *   slicer      -> slice (average_size ± size_variation bytes, `delay` µs apart)
 *   limit_data  -> reset-after (`bytes` pass, then a normal close; the count survives updates)
 *
 * `stream`: upstream = client -> server (to_upstream), downstream = server -> client (to_client).
 */
import { createDelayFilter } from '../filters/delay.js';
import type { Direction, Filter } from '../filters/filter.js';
import { createHoldFilter } from '../filters/hold.js';
import type { LiveFilter, LivePlan } from '../pipeline/live.js';
import { createResetAfterFilter, ResetAfterFilter } from '../filters/reset-after.js';
import { createSliceFilter } from '../filters/slice.js';
import { createSlowCloseFilter } from '../filters/slow-close.js';
import { createThrottleFilter, defaultBurst } from '../filters/throttle.js';
import { ApiError, INVALID_STREAM, INVALID_TOXIC_TYPE } from './api-error.js';

/** Each type's attributes and their defaults (all integers, as toxiproxy's Go structs have them). */
const ATTRIBUTES = {
  latency: { latency: 0, jitter: 0 },
  bandwidth: { rate: 0 },
  slow_close: { delay: 0 },
  timeout: { timeout: 0 },
  reset_peer: { timeout: 0 },
  slicer: { average_size: 0, size_variation: 0, delay: 0 },
  limit_data: { bytes: 0 },
} as const;

export type ToxicType = keyof typeof ATTRIBUTES;
type Attributes = Record<string, number>;

/** The delay filter's bound on bytes held in flight (as for a configured `delay`). */
const LATENCY_MAX_HELD = 4 * 1024 * 1024;

const PASS: Filter = { data: (chunk, push) => push(chunk) };

export interface ToxicJson {
  readonly attributes: Attributes;
  readonly name: string;
  readonly type: ToxicType;
  readonly stream: 'upstream' | 'downstream';
  readonly toxicity: number;
}

/** POST /proxies/{proxy}/toxics: a new toxic (defaults: stream downstream, toxicity 1, name type_stream). */
export function parseNewToxic(body: unknown): LiveFilter {
  const input = asObject(body);
  const type = input.type;
  const stream = input.stream ?? 'downstream';
  if (stream !== 'upstream' && stream !== 'downstream') throw INVALID_STREAM();
  if (typeof type !== 'string' || !Object.hasOwn(ATTRIBUTES, type)) throw INVALID_TOXIC_TYPE();
  const name = input.name === undefined || input.name === null || input.name === '' ? `${type}_${stream}` : input.name;
  if (typeof name !== 'string') throw ApiError.badBody('name: expected a string');
  const toxicity = input.toxicity === undefined || input.toxicity === null ? 1 : number('toxicity', input.toxicity);
  const attributes = readAttributes(type as ToxicType, { ...ATTRIBUTES[type as ToxicType] }, input.attributes);
  return toxic({ attributes, name, type: type as ToxicType, stream, toxicity });
}

/** POST /proxies/{proxy}/toxics/{toxic}: the given attributes and toxicity change, the rest stays. */
export function parseToxicUpdate(current: ToxicJson, body: unknown): LiveFilter {
  const input = asObject(body);
  const toxicity = input.toxicity === undefined || input.toxicity === null ? current.toxicity : number('toxicity', input.toxicity);
  const attributes = readAttributes(current.type, { ...current.attributes }, input.attributes);
  return toxic({ ...current, attributes, toxicity });
}

export function toxicJson(filter: LiveFilter): ToxicJson {
  return filter.spec as unknown as ToxicJson;
}

function toxic(spec: ToxicJson): LiveFilter {
  const direction: Direction = spec.stream === 'upstream' ? 'to_upstream' : 'to_client';
  return { name: spec.name, toxicity: spec.toxicity, spec: { ...spec }, plan: plan(spec.type, spec.attributes, direction, spec.name) };
}

function plan(type: ToxicType, a: Attributes, direction: Direction, name: string): LivePlan {
  const directions = [direction];
  const of = (create: LivePlan['create']): LivePlan => ({ name, directions, create });
  switch (type) {
    case 'latency':
      return of(() => createDelayFilter({ latencyMs: a.latency!, jitterMs: a.jitter!, maxHeld: LATENCY_MAX_HELD }));
    case 'bandwidth': {
      const bytesPerSecond = a.rate! * 1000;
      return of(() => (bytesPerSecond > 0 ? createThrottleFilter({ bytesPerSecond, burst: defaultBurst(bytesPerSecond) }) : PASS));
    }
    case 'slow_close':
      return of(() => createSlowCloseFilter(a.delay!));
    case 'timeout':
      return of((context) => createHoldFilter(context, a.timeout!));
    case 'reset_peer':
      return of((context) => createResetAfterFilter(context, { bytes: 0, graceMs: a.timeout!, reset: true }));
    case 'slicer':
      return of(() => createSliceFilter({ size: a.average_size!, variation: a.size_variation!, delayMs: a.delay! / 1000 }));
    case 'limit_data':
      return of((context, previous) =>
        createResetAfterFilter(context, { bytes: a.bytes!, reset: false, passed: previous instanceof ResetAfterFilter ? previous.passed : 0 }),
      );
  }
}

function readAttributes(type: ToxicType, attributes: Attributes, given: unknown): Attributes {
  if (given !== undefined && given !== null) {
    if (typeof given !== 'object' || Array.isArray(given)) throw ApiError.badBody('attributes: expected an object');
    // Unknown keys are ignored, as toxiproxy's JSON decoding does.
    for (const key of Object.keys(attributes)) {
      const value = (given as Record<string, unknown>)[key];
      if (value === undefined || value === null) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
        throw ApiError.badBody(`attributes.${key}: expected a whole number >= 0, got ${JSON.stringify(value)}`);
      }
      attributes[key] = value;
    }
  }
  if (type === 'slicer' && attributes.average_size! < 1) throw ApiError.badBody('attributes.average_size: must be at least 1');
  return attributes;
}

function asObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw ApiError.badBody('expected a JSON object');
  return body as Record<string, unknown>;
}

function number(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw ApiError.badBody(`${key}: expected a number, got ${JSON.stringify(value)}`);
  return value;
}
