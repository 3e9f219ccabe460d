/**
 * A client waiting in a queue (over a limit, or for a full upstream) is not read into the
 * proxy, yet a client that resets while it waits must leave the queue at once rather than
 * hold its place until `queue_timeout`. A paused socket sees nothing (libuv does not poll
 * it), so while it waits the socket is put in "readable" mode: Node reads it only up to its
 * readable highWaterMark (bounded memory per waiter, the rest stays in the kernel), a reset
 * surfaces as 'error' and 'close', and every byte read stays buffered, in order, for the
 * bridge's 'data' loop. A FIN is not a departure: a half-closed client still wants its answer.
 */
import type { Socket } from 'node:net';

/** Starts watching `socket` while it waits; call the returned function before resuming it. */
export function watchWhileWaiting(socket: Socket): () => void {
  socket.on('readable', keepBuffered);
  return () => {
    socket.off('readable', keepBuffered);
  };
}

/** Reads nothing out: the buffered bytes are for the bridge. */
function keepBuffered(): void {}
