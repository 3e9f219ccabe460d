/**
 * The `inspect` and `filters` keys of a listener (zod v4), imported by the config schema.
 * Durations become milliseconds and sizes bytes; patterns are checked here so that a bad
 * regex is a config error with its key path, not a runtime surprise.
 */
import { z } from 'zod';
import { byteSize, duration } from './units.js';
import { parsePattern } from '../filters/pattern.js';

const positiveByteSize = byteSize.refine((bytes) => bytes > 0, 'must be more than 0 bytes');

const direction = z.enum(['to_upstream', 'to_client', 'both']).default('both');

/** Shared by replace and block: the pattern and how far a match may span chunks. */
const matching = {
  direction,
  match: z.string().min(1, 'must not be empty'),
  /** Take `match` literally even when it looks like /regex/. */
  literal: z.boolean().default(false),
  /** A regex match spanning chunk boundaries is found when it is at most this long. */
  max_match: positiveByteSize.default(256),
  /** How long bytes that may start a match wait for the rest before they are passed on. */
  hold: duration.default(50),
};

function checkPattern(entry: { match: string; literal: boolean }, ctx: z.RefinementCtx): void {
  try {
    parsePattern(entry.match, entry.literal);
  } catch (error) {
    ctx.addIssue({ code: 'custom', path: ['match'], message: (error as Error).message });
  }
}

const replace = z.strictObject({ type: z.literal('replace'), ...matching, with: z.string() }).superRefine(checkPattern);

const block = z.strictObject({ type: z.literal('block'), ...matching }).superRefine(checkPattern);

const throttle = z.strictObject({
  type: z.literal('throttle'),
  direction,
  bytes_per_second: positiveByteSize,
  /** Default: 50 ms worth of the rate. */
  burst: positiveByteSize.optional(),
});

const delay = z.strictObject({
  type: z.literal('delay'),
  direction,
  latency: duration,
  jitter: duration.default(0),
  /** Bytes in flight inside the filter; the throughput is at most max_held / latency. */
  max_held: positiveByteSize.default(4 * 1024 * 1024),
});

const resetAfter = z
  .strictObject({
    type: z.literal('reset_after'),
    direction,
    bytes: byteSize.optional(),
    after: duration.optional(),
  })
  .refine((entry) => entry.bytes !== undefined || entry.after !== undefined, 'needs `bytes` or `after` (or both)');

const slice = z.strictObject({
  type: z.literal('slice'),
  direction,
  size: positiveByteSize,
  delay: duration.default(0),
});

/** Decided once per connection, so it has no direction. */
const dropConnection = z.strictObject({
  type: z.literal('drop_connection_probability'),
  probability: z.number().min(0).max(1),
});

const plugin = z.strictObject({
  type: z.literal('module'),
  direction,
  module: z.string().regex(/^(\.{1,2}\/|\/|file:)/, 'expected a path such as ./plugins/my-filter.js (relative to the config file) or an absolute path'),
  options: z.unknown().optional(),
});

/**
 * One `filters` entry. A plugin entry (`{ module, options }`) has no `type` in the config;
 * it is given `type: module` here so that every entry is told apart by `type`, with one
 * readable error when the type is unknown.
 */
export const filterSpecSchema = z.preprocess(
  (value) => (value !== null && typeof value === 'object' && 'module' in value && !('type' in value) ? { type: 'module', ...value } : value),
  z.discriminatedUnion('type', [replace, block, throttle, delay, resetAfter, slice, dropConnection, plugin]),
);

export const inspectSpecSchema = z.strictObject({
  log_data: z.enum(['hex', 'text']).optional(),
  /** Bytes dumped per connection (both directions together); then one notice, and silence. */
  log_data_limit: byteSize.default(64 * 1024),
  capture: z.string().min(1).optional(),
  /** The capture file is rotated (file.1, file.2, ...) before it would grow past this. */
  capture_max_bytes: positiveByteSize.default(100 * 1024 * 1024),
  /** How many rotated files are kept. */
  capture_keep: z.number().int().min(0).default(5),
});

export type FilterSpec = z.output<typeof filterSpecSchema>;
export type InspectSpec = z.output<typeof inspectSpecSchema>;
