/**
 * The access log: one line per finished connection (`event: close`) and one per refused
 * connection (`event: reject`), with the contract's fields. Written once per connection,
 * never per chunk.
 */
import type { Logger } from 'pino';

import type { CloseReason, RejectReason } from './metrics.js';

export type { CloseReason, RejectReason };

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

export function logClose(logger: Logger, reason: CloseReason, record: AccessRecord): void {
  logger.info({ event: 'close', reason, ...record }, 'connection closed');
}

export function logReject(logger: Logger, reason: RejectReason, record: AccessRecord): void {
  logger.info({ event: 'reject', reason, ...record }, 'connection refused');
}

/** "ip:port" of a peer, with IPv4-mapped IPv6 addresses shown as the IPv4 address they are. */
export function formatPeer(address: string, port: number | undefined): string {
  return address.includes(':') ? `[${address}]:${port ?? 0}` : `${address}:${port ?? 0}`;
}

/** `::ffff:10.1.2.3` (a v4 client on a dual-stack listener) is the IPv4 client 10.1.2.3. */
export function unmapIPv4(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
