/**
 * Loopback plumbing for the protocol tests: a TCP server whose accepted sockets are
 * handed out paused, one by one (as the proxy's listener will accept them).
 */
import type net from 'node:net';
import { startServer } from '../helpers/servers.js';

export interface LoopbackServer {
  port: number;
  /** The next accepted socket, paused, with an 'error' handler already attached. */
  accepted(): Promise<net.Socket>;
  close(): Promise<void>;
}

export async function startLoopbackServer(options: { pauseOnConnect?: boolean } = {}): Promise<LoopbackServer> {
  const waiting: ((socket: net.Socket) => void)[] = [];
  const ready: net.Socket[] = [];
  const server = await startServer(
    (socket) => {
      const waiter = waiting.shift();
      if (waiter !== undefined) waiter(socket);
      else ready.push(socket);
    },
    '127.0.0.1',
    { pauseOnConnect: options.pauseOnConnect ?? true, allowHalfOpen: false },
  );
  return {
    port: server.port,
    accepted: () => {
      const socket = ready.shift();
      return socket !== undefined ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve));
    },
    close: () => server.close(),
  };
}

/** Listener counts of the events a prefix reader may touch, to prove it left none behind. */
export function listenerCounts(socket: net.Socket): Record<string, number> {
  const events = ['readable', 'data', 'end', 'close', 'error'];
  return Object.fromEntries(events.map((event) => [event, socket.listenerCount(event)]));
}
