/**
 * A tiny proxy for the filter and inspection tests: client -> [proxy server] -> upstream,
 * all on loopback, with the pipeline's two FilteredDirections in the middle (what the
 * Bridge does in filtered mode), and a pino logger whose lines the test can read.
 */
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { FilteredDirection } from '../../src/filters/filtered-direction.js';
import { buildPipelineFactory, type DataPipeline, type DataPipelineFactory, type PipelineSpec } from '../../src/filters/pipeline.js';
import { filterSpecSchema, inspectSpecSchema } from '../../src/filters/schema.js';

export type LogLine = Record<string, unknown> & { msg?: string };

/** A logger that keeps its JSON lines in memory. */
export function memoryLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

/** Parses raw config entries the way the config loader will (defaults, durations, sizes). */
export function pipelineSpec(raw: { inspect?: unknown; filters?: unknown[] }): PipelineSpec {
  return {
    inspect: raw.inspect === undefined ? undefined : inspectSpecSchema.parse(raw.inspect),
    filters: raw.filters?.map((entry) => filterSpecSchema.parse(entry)),
  };
}

export interface Closed {
  readonly reason: string;
  readonly reset: boolean;
}

export interface Proxied {
  /** The test's client socket. */
  readonly client: Socket;
  /** The upstream server's side of the upstream connection. */
  readonly upstream: Socket;
  /** Settles when the mini bridge closed the connection (a filter, a failure). */
  readonly closed: Promise<Closed>;
  /** Settles when the proxy's two sockets have both closed and the pipeline is destroyed. */
  readonly finished: Promise<void>;
  readonly proxyFront: Socket;
  readonly proxyBack: Socket;
}

export interface Harness {
  readonly factory: DataPipelineFactory;
  readonly lines: LogLine[];
  /** Opens one proxied connection. */
  open(): Promise<Proxied>;
  /** Closes every socket and server, and the factory. */
  dispose(): Promise<void>;
}

export interface HarnessOptions {
  readonly baseDir?: string;
  /** '127.0.0.1' (default) or '::1'. */
  readonly host?: string;
}

async function listen(server: Server, host: string): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

export async function startHarness(raw: { inspect?: unknown; filters?: unknown[] }, options: HarnessOptions = {}): Promise<Harness> {
  const host = options.host ?? '127.0.0.1';
  const { logger, lines } = memoryLogger();
  const factory = await buildPipelineFactory(pipelineSpec(raw), { baseDir: options.baseDir ?? process.cwd(), logger, listener: 'test' });
  if (!factory) throw new Error('nothing configured');
  const sockets = new Set<Socket>();
  const track = (socket: Socket): Socket => {
    sockets.add(socket);
    socket.on('error', () => undefined); // each test asserts the errors it expects itself
    socket.on('close', () => sockets.delete(socket));
    return socket;
  };

  const accepted: Socket[] = [];
  const acceptedWaiters: ((socket: Socket) => void)[] = [];
  const upstreamServer = createServer({ allowHalfOpen: true }, (socket) => {
    track(socket);
    const waiter = acceptedWaiters.shift();
    if (waiter) waiter(socket);
    else accepted.push(socket);
  });
  const upstreamPort = await listen(upstreamServer, host);
  const nextUpstream = (): Promise<Socket> =>
    new Promise((resolve) => {
      const socket = accepted.shift();
      if (socket) resolve(socket);
      else acceptedWaiters.push(resolve);
    });

  let lastId = 0;
  const bridged: ((proxied: Omit<Proxied, 'client' | 'upstream'>) => void)[] = [];
  const proxyServer = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (front) => {
    track(front);
    const back = track(connect({ host, port: upstreamPort, allowHalfOpen: true }));
    back.once('connect', () => {
      let resolveClosed!: (closed: Closed) => void;
      const closed = new Promise<Closed>((resolve) => (resolveClosed = resolve));
      let pipeline: DataPipeline | undefined;
      let directions: FilteredDirection[] = [];
      const destroyBoth = (reset: boolean): void => {
        for (const socket of [front, back]) {
          if (socket.destroyed) continue;
          if (reset) socket.resetAndDestroy();
          else socket.destroy();
        }
      };
      const close = (reason: string, closeOptions?: { reset?: boolean }): void => {
        resolveClosed({ reason, reset: closeOptions?.reset === true });
        destroyBoth(closeOptions?.reset === true);
      };
      const finished = Promise.all([once(front, 'close'), once(back, 'close')]).then(() => {
        for (const direction of directions) direction.stop();
        pipeline?.destroy();
      });
      front.on('error', () => destroyBoth(true));
      back.on('error', () => destroyBoth(true));
      pipeline = factory.create({
        id: String(++lastId),
        listener: 'test',
        log: logger,
        client: { address: front.remoteAddress!, port: front.remotePort! },
        proxyFront: { address: front.localAddress!, port: front.localPort! },
        proxyBack: { address: back.localAddress!, port: back.localPort! },
        upstream: { address: back.remoteAddress!, port: back.remotePort! },
        close,
      });
      const onFailure = (): void => close('filter');
      directions = [new FilteredDirection(front, back, pipeline.toUpstream, onFailure), new FilteredDirection(back, front, pipeline.toClient, onFailure)];
      for (const direction of directions) direction.start();
      bridged.shift()?.({ closed, finished, proxyFront: front, proxyBack: back });
    });
  });
  const proxyPort = await listen(proxyServer, host);

  return {
    factory,
    lines,
    async open() {
      const bridge = new Promise<Omit<Proxied, 'client' | 'upstream'>>((resolve) => bridged.push(resolve));
      const client = track(connect({ host, port: proxyPort, allowHalfOpen: true }));
      const [upstream, rest] = await Promise.all([nextUpstream(), bridge]);
      return { client, upstream, ...rest };
    },
    async dispose() {
      for (const socket of sockets) socket.destroy();
      upstreamServer.close();
      proxyServer.close();
      await Promise.all([once(upstreamServer, 'close'), once(proxyServer, 'close')]);
      await factory.close();
    },
  };
}

/** Resolves with everything `socket` receives until its end (FIN) or close. */
export function readToEnd(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    const done = (): void => resolve(Buffer.concat(chunks));
    socket.once('end', done);
    socket.once('close', done);
  });
}

/**
 * Sends `toUpstream` from the client and `toClient` from the upstream, each followed by FIN,
 * and resolves with what arrived at each end, as text.
 */
export async function exchange(proxied: Proxied, toUpstream: string, toClient: string): Promise<{ atUpstream: string; atClient: string }> {
  const atUpstream = readToEnd(proxied.upstream);
  const atClient = readToEnd(proxied.client);
  proxied.client.end(toUpstream);
  proxied.upstream.end(toClient);
  return { atUpstream: (await atUpstream).toString(), atClient: (await atClient).toString() };
}

/** Resolves with the first `count` bytes `socket` receives (rejects if it closes first). */
export function readBytes(socket: Socket, count: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= count) {
        cleanup();
        resolve(Buffer.concat(chunks));
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`closed after ${received} of ${count} bytes: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/**
 * How the peer ended `socket`: 'end' (a FIN), or the error code (ECONNRESET for a reset).
 * Reads and discards whatever still arrives.
 */
export function closeOutcome(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once('end', () => resolve('end'));
    socket.once('close', () => resolve('closed'));
    socket.resume();
  });
}

export const DIRECTIONS = ['to_upstream', 'to_client'] as const;

/** The sending and receiving ends for a direction. */
export function ends(proxied: Proxied, direction: (typeof DIRECTIONS)[number]): { sender: Socket; receiver: Socket } {
  return direction === 'to_upstream'
    ? { sender: proxied.client, receiver: proxied.upstream }
    : { sender: proxied.upstream, receiver: proxied.client };
}
