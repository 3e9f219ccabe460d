/**
 * Ending a socket, with a reset (RST) when asked and when a reset is possible.
 *
 * Node's resetAndDestroy() fails with EINVAL while the socket's FIN is on its way out
 * (end() was called and libuv's shutdown request is still pending, uv_tcp_close_reset's
 * rule) and then never closes the handle: no 'close' event, a leaked descriptor, and a
 * connection whose teardown waits for that 'close' forever. Such a socket is destroyed
 * plainly instead (its FIN is already the last word; the kernel answers later data with
 * a reset anyway). A socket still connecting cannot be reset either.
 */
import type { PlainSocket } from './raw-socket.js';

export function destroySocket(socket: PlainSocket, reset: boolean): void {
  if (socket.destroyed) return;
  const shuttingDown = socket.writableEnded && !socket.writableFinished;
  if (reset && !socket.connecting && !shuttingDown) socket.resetAndDestroy();
  else socket.destroy();
}
