/**
 * The bodies of the run-time upstream routes, validated with the config file's own rules for
 * an upstream entry (the same HOST:PORT syntax, positive integer weight and max_connections),
 * so that what the API accepts is exactly what a reload would accept in the file.
 */
import { z } from 'zod';
import { formatKeyPath } from '../config/load.js';
import { formatHostPort } from '../net/address.js';
import { upstream } from '../config/schema.js';
import type { UpstreamChange } from './admin-runtime.js';

const settings = z
  .strictObject({
    weight: z.number().int().positive().optional(),
    max_connections: z.number().int().positive().nullable().optional(),
  })
  .refine((body) => body.weight !== undefined || body.max_connections !== undefined, 'expected weight and/or max_connections');

/** POST body: `{"address": "HOST:PORT", "weight"?: N, "max_connections"?: N}`. */
export function parseAddRequest(body: unknown): UpstreamChange | string {
  const result = upstream.safeParse(body);
  if (!result.success) return problem(result.error);
  const { address, weight, max_connections } = result.data;
  return {
    op: 'add',
    address: formatHostPort(address.host, address.port),
    host: address.host,
    port: address.port,
    weight,
    ...(max_connections !== undefined && { max_connections }),
  };
}

/** PATCH body: `{"weight"?: N, "max_connections"?: N | null}` (null lifts the limit), one at least. */
export function parseUpdateRequest(address: string, body: unknown): UpstreamChange | string {
  const result = settings.safeParse(body);
  if (!result.success) return problem(result.error);
  return { op: 'update', address, ...result.data };
}

function problem(error: z.ZodError): string {
  return error.issues.map((issue) => `${formatKeyPath(issue.path)}: ${issue.message}`).join('; ');
}
