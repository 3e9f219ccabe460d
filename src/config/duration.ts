/**
 * Durations in the config: a number of milliseconds, or a string with a unit
 * (`250ms`, `5s`, `2m`, `1h`, `1d`; decimals allowed: `1.5s`).
 */
import { TcpProxyError } from '../errors/errors.js';
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

/**
 * The longest duration a Node timer can wait (2^31-1 ms, about 24.8 days): a longer one
 * fires after 1 ms instead (found by fuzzing, #12): `idle_timeout: 30d` closed connections
 * at once. Longer durations are refused.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

export class DurationError extends TcpProxyError {
  constructor(message: string) {
    super('config_invalid', message);
  }
}

export function parseDuration(value: unknown): number {
  const ms = toMilliseconds(value);
  if (ms > MAX_DURATION_MS) throw new DurationError(`at most 24d (${MAX_DURATION_MS}ms), got ${JSON.stringify(value)}`);
  return ms;
}

function toMilliseconds(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const match = DURATION.exec(value.trim());
    if (match) return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
    if (/^\d+$/.test(value.trim())) return Number(value.trim());
  }
  throw new DurationError(`expected a duration such as 250ms, 5s, 2m or 1h (or a number of milliseconds), got ${JSON.stringify(value)}`);
}
