/**
 * Loopback plumbing for the protocol tests: a plain TCP server whose accepted sockets are
 * handed out paused (as the proxy's listener will accept them), and a matching client.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface LoopbackServer {
  port: number;
  /** The next accepted socket, paused, with an 'error' handler already attached. */
  accepted(): Promise<net.Socket>;
  close(): Promise<void>;
}

export async function startLoopbackServer(options: { pauseOnConnect?: boolean } = {}): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  const waiting: ((socket: net.Socket) => void)[] = [];
  const ready: net.Socket[] = [];
  const server = net.createServer({ pauseOnConnect: options.pauseOnConnect ?? true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {}); // resets are part of several tests; the assertions look elsewhere
    socket.on('close', () => sockets.delete(socket));
    const waiter = waiting.shift();
    if (waiter !== undefined) waiter(socket);
    else ready.push(socket);
  });
  server.on('error', () => {}); // a listen failure rejects the once() below
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    accepted: () => {
      const socket = ready.shift();
      return socket !== undefined ? Promise.resolve(socket) : new Promise((resolve) => waiting.push(resolve));
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Listener counts of the events a prefix reader may touch, to prove it left none behind. */
export function listenerCounts(socket: net.Socket): Record<string, number> {
  const events = ['readable', 'data', 'end', 'close', 'error'];
  return Object.fromEntries(events.map((event) => [event, socket.listenerCount(event)]));
}
