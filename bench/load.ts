/**
 * Load generation for the benchmark: upstream servers (source, sink, echo) and clients
 * that measure throughput, connection rate, latency and idle memory. Clients read with
 * `onread` into one reused buffer so that the generator stays cheaper than what it measures.
 */
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';

const CHUNK = Buffer.alloc(256 * 1024, 0x61);
const SINK_BUFFER = Buffer.allocUnsafe(256 * 1024);

export interface Upstreams {
  source: number;
  sink: number;
  echo: number;
  close(): void;
}

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1', 4096);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Writes as fast as the reader takes it, respecting backpressure. */
function pour(socket: Socket): void {
  const write = (): void => {
    while (!socket.destroyed && socket.write(CHUNK));
  };
  socket.on('drain', write);
  write();
}

function echoServer(): Server {
  return net.createServer({ noDelay: true }, (s) => {
    s.on('error', () => undefined);
    s.on('data', (chunk) => s.write(chunk));
    s.on('end', () => s.end());
  });
}

/** `count` echo servers, listening; resolves with the servers and their ports. */
export async function startEchoServers(count: number): Promise<{ servers: Server[]; ports: number[] }> {
  const servers = Array.from({ length: count }, echoServer);
  return { servers, ports: await Promise.all(servers.map(listen)) };
}

export async function startUpstreams(): Promise<Upstreams> {
  const servers = [
    net.createServer((s) => {
      s.on('error', () => undefined);
      pour(s);
    }),
    net.createServer((s) => {
      s.on('error', () => undefined);
      s.resume();
    }),
    echoServer(),
  ];
  const [source, sink, echo] = await Promise.all(servers.map(listen));
  return { source: source!, sink: sink!, echo: echo!, close: () => servers.forEach((s) => s.close()) };
}

/** Bytes per second counted by `bytesSoFar` over `seconds`, after a 300 ms warm-up. */
export async function measureRate(bytesSoFar: () => number, seconds: number): Promise<number> {
  await sleep(300);
  const start = bytesSoFar();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  return ((bytesSoFar() - start) * 1000) / (performance.now() - t0);
}

/** Completions per second of `clients` loops each repeating `attempt` for `seconds`. */
export async function repeatRate(clients: number, seconds: number, attempt: () => Promise<void>): Promise<number> {
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await attempt();
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, loop));
  return (done * 1000) / (performance.now() - t0);
}

function connect(port: number, onread?: (n: number) => void): Promise<Socket> {
  const socket = net.connect({
    port,
    host: '127.0.0.1',
    noDelay: true,
    ...(onread && { onread: { buffer: SINK_BUFFER, callback: (n: number): boolean => (onread(n), true) } }),
  });
  socket.on('error', () => undefined);
  return once(socket, 'connect').then(() => socket);
}

/** Bytes per second received from `port` (source upstream) over `seconds`, summed over `streams`. */
export async function downloadRate(port: number, streams: number, seconds: number): Promise<number> {
  let bytes = 0;
  const sockets = await Promise.all(Array.from({ length: streams }, () => connect(port, (n) => (bytes += n))));
  const rate = await measureRate(() => bytes, seconds);
  sockets.forEach((s) => s.destroy());
  return rate;
}

/** Bytes per second sent to `port` (sink upstream) over `seconds`, as accepted by the path. */
export async function uploadRate(port: number, streams: number, seconds: number): Promise<number> {
  const sockets = await Promise.all(Array.from({ length: streams }, () => connect(port)));
  sockets.forEach(pour);
  const rate = await measureRate(() => sockets.reduce((sum, s) => sum + s.bytesWritten - s.writableLength, 0), seconds);
  sockets.forEach((s) => s.destroy());
  return rate;
}

/** Connections per second: `clients` loops of connect, 64-byte echo, close. */
export async function connectionRate(port: number, clients: number, seconds: number): Promise<number> {
  const payload = Buffer.alloc(64, 0x62);
  return repeatRate(clients, seconds, async () => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(payload);
    let got = 0;
    while (got < 64) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      got += chunk.length;
    }
    socket.end();
    await once(socket, 'close');
  });
}

/** Round-trip times (µs) of 64-byte ping-pongs on `connections` connections for `seconds`. */
export async function pingPong(port: number, connections: number, seconds: number): Promise<{ p50: number; p99: number }> {
  const samples: number[] = [];
  const payload = Buffer.alloc(64, 0x63);
  const deadline = performance.now() + seconds * 1000;
  const run = async (): Promise<void> => {
    const socket = await connect(port);
    let pending: (() => void) | undefined;
    let got = 0;
    socket.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got >= 64 && pending) {
        got -= 64;
        const resolve = pending;
        pending = undefined;
        resolve();
      }
    });
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        pending = resolve;
        socket.write(payload);
      });
      samples.push((performance.now() - t0) * 1000);
    }
    socket.destroy();
  };
  await Promise.all(Array.from({ length: connections }, run));
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(samples.length * 0.5)]!, p99: samples[Math.floor(samples.length * 0.99)]! };
}

/** Opens `count` connections and proves each is bridged with one echo; returns a closer. */
export async function openIdle(port: number, count: number): Promise<() => void> {
  const sockets: Socket[] = [];
  for (let i = 0; i < count; i += 250) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(250, count - i) }, async () => {
        const socket = await connect(port);
        socket.write('x');
        await once(socket, 'data');
        return socket;
      }),
    );
    sockets.push(...batch);
  }
  return () => sockets.forEach((s) => s.destroy());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
