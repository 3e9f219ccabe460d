/**
 * Whether a socket's peer is gone, asked of the kernel without reading or writing a byte.
 *
 * A socket that is not reading (paused for backpressure, waiting in a queue, or past its
 * peer's FIN) and has no write pending is not polled by libuv at all: a reset from its peer
 * changes nothing Node can see (nodejs/node#40691 is the CLOSE_WAIT variant). The kernel
 * knows, though: a reset (or a keepalive timeout) moves the TCP socket to CLOSE, where
 * getpeername(2) fails with ENOTCONN, whereas a live or half-closed connection (our side in
 * ESTABLISHED, CLOSE_WAIT, FIN_WAIT...) still answers with the peer's address.
 *
 * Node has no public way to ask (`remoteAddress` is cached at the first access), so this
 * calls the handle's own getpeername. It is the one place that does: `_handle` is not
 * documented; test/proxy/peer-probe.test.ts checks it on every supported Node version,
 * TLS sockets included (their TLSWrap handle forwards getpeername to the TCP handle below),
 * and raw-socket.ts's sockets, whose `_handle` is the TCP handle itself.
 */
import { constants } from 'node:os';
import type { PlainSocket } from './raw-socket.js';
import { TcpProxyError } from '../errors/errors.js';

interface PeerNameHandle {
  getpeername?: (out: Record<string, unknown>) => number;
}

/** libuv reports errors as negative errno values. */
export const UV_ENOTCONN = -constants.errno.ENOTCONN;
/** getpeername writes the address here; reused, the answer is only the return code. */
const scratch: Record<string, unknown> = {};

/** True when the kernel has closed the connection under `socket` (reset, keepalive timeout). */
export function peerIsGone(socket: PlainSocket): boolean {
  // A connecting socket (SYN_SENT) also has no peer yet: that is not a departure.
  if (socket.connecting || socket.destroyed) return false;
  const handle = (socket as unknown as { _handle: PeerNameHandle | null })._handle;
  if (handle === null || typeof handle.getpeername !== 'function') return false;
  return handle.getpeername(scratch) === UV_ENOTCONN;
}

/** The error a socket found reset by a probe is destroyed with (its owner logs the code). */
export class PeerGoneError extends TcpProxyError {
  constructor() {
    super('ECONNRESET', 'connection reset by peer');
  }
}

/**
 * Whether an 'end' on `socket` was really a reset. libuv reports EOF instead of ECONNRESET
 * when a reset arrives after a partial read (EPOLLHUP), so a peer that resets mid-stream
 * would look like one that finished; carried on as a FIN, that would pass a truncated
 * download off as complete. After a true FIN the socket is in CLOSE_WAIT, after a reset in
 * CLOSE. (Once our own FIN is out, CLOSE is also a normal end: not asked then.)
 */
export function endWasReset(socket: PlainSocket): boolean {
  return !socket.writableEnded && peerIsGone(socket);
}

/**
 * Destroys `socket` with a PeerGoneError when its peer reset and nothing else would tell;
 * true when it did. Not asked:
 *  - with a write pending: libuv polls the socket for it, the write's own error will come;
 *  - once our FIN is sent (end()): a peer that sent its FIN and acknowledged ours also
 *    leaves the socket in CLOSE, and unread data before its FIN must still be carried.
 *    Until we end our side, only a reset (or a keepalive timeout) leads to CLOSE.
 */
export function endIfPeerGone(socket: PlainSocket): boolean {
  if (socket.destroyed || socket.writableEnded || socket.writableLength > 0 || !peerIsGone(socket)) return false;
  socket.destroy(new PeerGoneError());
  return true;
}
