/**
 * Refusing a connection, in one place for every stage that can (the PROXY header, admission,
 * the TLS handshake or ClientHello, an upstream that cannot be reached): the client is closed
 * without a byte, `tcpproxy_rejections_total{reason}` counts it, and it gets its one access-log
 * line (`event: reject`). A refused connection is never `bridged()` (metrics.ts pairing rule).
 */
import type { ListenerContext } from './listener-context.js';
import type { PlainSocket } from './raw-socket.js';
import { logReject, type AccessRecord } from '../observability/access-log.js';
import type { RejectReason } from '../observability/reasons.js';

export function refuseConnection(context: ListenerContext, client: PlainSocket, reason: RejectReason, record: AccessRecord): void {
  client.destroy();
  context.metrics.rejected(reason);
  logReject(context.logger, reason, record);
}

/** The access-log fields of a connection that never carried a byte. */
export function emptyRecord(listener: string, client: string): AccessRecord {
  return { id: '-', listener, client, upstream: null, bytes_from_client: 0, bytes_to_client: 0, duration_ms: 0 };
}
