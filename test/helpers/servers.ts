/** Real loopback servers for the tests: echo, sink, greeter, and a black hole. */
import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  readonly address: string;
  /** Every socket the server accepted, in order (to assert "no upstream connection"). */
  readonly accepted: Socket[];
  close(): Promise<void>;
}

export interface ServerOptions {
  /** 0 (default): any free port; a fixed one to bring an upstream back where it was. */
  port?: number;
  /** Default true: the tests drive half-close themselves. */
  allowHalfOpen?: boolean;
  /** Accepted sockets start paused, as the proxy's listener accepts them. */
  pauseOnConnect?: boolean;
}

/** A TCP server on loopback that hands each accepted socket (with an 'error' handler) to `onSocket`. */
export async function startServer(onSocket: (socket: Socket) => void, host = '127.0.0.1', options: ServerOptions = {}): Promise<TestServer> {
  const accepted: Socket[] = [];
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? true, pauseOnConnect: options.pauseOnConnect ?? false }, (socket) => {
    accepted.push(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  server.listen(options.port ?? 0, host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    address: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    accepted,
    close: async () => {
      for (const socket of accepted) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Accepts and ends at once: the connect succeeds, nothing more (health checks, pools). */
export function endAtOnce(socket: Socket): void {
  socket.end();
}

/** Echoes every byte back and carries half-close (ends after the client ends). */
export function startEchoServer(host?: string): Promise<TestServer> {
  return startServer((socket) => socket.pipe(socket), host);
}

/** A port nobody listens on (bound, then closed): connecting is refused. */
export async function refusedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * A black-holed upstream: a socket that listens with a backlog of 0 and never accepts.
 * Once its accept queue is full, the kernel drops further SYNs, so connects hang.
 */
export async function startBlackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const child: ChildProcess = spawn(
    'python3',
    [
      '-c',
      [
        'import socket, sys, time',
        's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
        'print(s.getsockname()[1], flush=True)',
        'sys.stdin.read()',
      ].join('\n'),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  // Fill the accept queue so that the next SYN is dropped.
  const fillers: Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    fillers.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    port,
    close: async () => {
      for (const socket of fillers) socket.destroy();
      child.stdin!.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}
