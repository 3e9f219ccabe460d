/**
 * A client waiting in the admission queue (over a limit) is not read at all: its bytes and
 * its FIN stay in the kernel until its turn, and a half-closed client keeps its place (it
 * still wants its answer). A client that resets while it waits must leave the queue
 * rather than hold its place until `queue_timeout`: the dead-peer sweep probes it while it
 * waits and destroys it (error ECONNRESET) when its peer is gone, which fires 'close'.
 */
import type { Socket } from 'node:net';
import { deadPeerSweep, type Watched } from './dead-peer-sweep.js';
import { endIfPeerGone } from './peer-probe.js';

/** Starts watching `socket` while it waits; call the returned function when its wait ends. */
export function watchWhileWaiting(socket: Socket): () => void {
  const watched: Watched = { probe: () => !socket.destroyed && !endIfPeerGone(socket) };
  deadPeerSweep.watch(watched);
  return () => deadPeerSweep.unwatch(watched);
}
