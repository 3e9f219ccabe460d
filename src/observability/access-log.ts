/**
 * The access log: one line per finished connection (`event: close`) and one per refused
 * connection (`event: reject`), with the contract's fields. Written once per connection,
 * never per chunk, built directly by access-line.ts (pino's own path where it cannot).
 */
import type { Logger } from 'pino';

import { accessLineWriter } from './access-line.js';
import type { CloseReason, RejectReason } from './reasons.js';
import { isSystemErrorCode, TcpProxyError } from '../errors/errors.js';

export interface AccessRecord {
  readonly id: string;
  readonly listener: string;
  readonly client: string;
  readonly upstream: string | null;
  readonly bytes_from_client: number;
  readonly bytes_to_client: number;
  readonly duration_ms: number;
  /** Extra fields: the error code, the PROXY-protocol client, TLS details... */
  readonly [extra: string]: unknown;
}

/**
 * The fields `log.access_fields` may select. `event` is always written (it is what tells an
 * access-log line from the others). The contract's minimum is every field but `id`,
 * `error`, `proxied_client` and `tls`; an extra field is written when the connection has it.
 */
export const ACCESS_FIELDS = [
  'event',
  'reason',
  'id',
  'listener',
  'client',
  'upstream',
  'bytes_from_client',
  'bytes_to_client',
  'duration_ms',
  'error',
  'error_code',
  'proxied_client',
  'tls',
] as const;
export type AccessField = (typeof ACCESS_FIELDS)[number];

/** The fields after `event`, or null for every field (the default). Process-wide, like the log level. */
let selected: readonly Exclude<AccessField, 'event'>[] | null = null;

/** Applies `log.access_fields` (at start and on each reload). */
export function selectAccessFields(fields: readonly AccessField[] | undefined): void {
  selected = fields === undefined ? null : [...new Set(fields)].filter((f): f is Exclude<AccessField, 'event'> => f !== 'event');
}

const writeClose = accessLineWriter('close', 'connection closed');
const writeReject = accessLineWriter('reject', 'connection refused');

export function logClose(logger: Logger, reason: CloseReason, record: AccessRecord): void {
  if (writeClose(logger, reason, record, selected)) return;
  logger.info(selected === null ? { event: 'close', reason, ...record } : pick('close', reason, record, selected), 'connection closed');
}

export function logReject(logger: Logger, reason: RejectReason, record: AccessRecord): void {
  if (writeReject(logger, reason, record, selected)) return;
  logger.info(selected === null ? { event: 'reject', reason, ...record } : pick('reject', reason, record, selected), 'connection refused');
}

/**
 * An access-log line's `error` and `error_code`. `error` is what it always was: the system's
 * code (ECONNREFUSED), else the message, which says what failed (`filter replace
 * (to_client) failed: ...`). `error_code` is the stable code to branch on: tcpproxy's own
 * (README "Error codes") or the system's.
 */
export function errorFields(error: Error): { error: string; error_code?: string } {
  const code = (error as NodeJS.ErrnoException).code;
  if (error instanceof TcpProxyError && !isSystemErrorCode(error.code)) return { error: error.message, error_code: error.code };
  return typeof code === 'string' ? { error: code, error_code: code } : { error: error.message };
}

/** One object per line, as the default's spread: selecting fields costs no extra allocation. */
function pick(event: 'close' | 'reject', reason: string, record: AccessRecord, fields: readonly string[]): Record<string, unknown> {
  const line: Record<string, unknown> = { event };
  for (const field of fields) {
    const value = field === 'reason' ? reason : record[field];
    if (value !== undefined) line[field] = value;
  }
  return line;
}
