/**
 * Durations in the config: a number of milliseconds, or a string with a unit
 * (`250ms`, `5s`, `2m`, `1h`, `1d`; decimals allowed: `1.5s`).
 */
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/;

export class DurationError extends Error {}

export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const match = DURATION.exec(value.trim());
    if (match) return Math.round(Number(match[1]) * UNIT_MS[match[2]!]!);
    if (/^\d+$/.test(value.trim())) return Number(value.trim());
  }
  throw new DurationError(
    `expected a duration such as 250ms, 5s, 2m or 1h (or a number of milliseconds), got ${JSON.stringify(value)}`,
  );
}
