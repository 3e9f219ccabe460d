/** A toxiproxy-server in process, and the socket measurements the toxiproxy tests share. */
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before } from 'node:test';
import { Toxiproxy } from 'toxiproxy-node-client';
import { createLogger } from '../../src/observability/logger.js';
import { ToxiproxyServer } from '../../src/cli/toxiproxy-server.js';
import { LogCollector } from '../helpers/log-collector.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { connect } from '../helpers/sockets.js';

export interface TestToxiproxy {
  readonly url: string;
  readonly client: Toxiproxy;
  readonly server: ToxiproxyServer;
  readonly logs: LogCollector;
  stop(): Promise<void>;
}

export async function startToxiproxy(configFile?: string): Promise<TestToxiproxy> {
  const logs = new LogCollector();
  const destination = logs.destination();
  const server = new ToxiproxyServer({ host: '127.0.0.1', port: 0, configFile, logger: createLogger({ level: 'info', destination }) });
  const { port } = await server.start();
  const url = `http://127.0.0.1:${port}`;
  return { url, client: new Toxiproxy(url), server, logs, stop: () => server.shutdown() };
}

/** In a describe(): a toxiproxy-server and an echo upstream for its tests, started before and stopped after them. */
export function toxiproxyAndEcho(): { readonly toxiproxy: TestToxiproxy; readonly echo: TestServer } {
  const fixture = {} as { toxiproxy: TestToxiproxy; echo: TestServer };
  before(async () => {
    fixture.toxiproxy = await startToxiproxy();
    fixture.echo = await startEchoServer();
  });
  after(async () => {
    await fixture.toxiproxy.stop();
    await fixture.echo.close();
  });
  return fixture;
}

/** The port of a proxy's `listen` ("127.0.0.1:40123"). */
export function portOf(listen: string): number {
  return Number(listen.slice(listen.lastIndexOf(':') + 1));
}

/** A client socket through the proxy whose received bytes are counted, to time round trips. */
export class EchoClient {
  received = 0;
  private waiters: { bytes: number; resolve: () => void }[] = [];

  private constructor(readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      this.waiters = this.waiters.filter((w) => (this.received >= w.bytes ? (w.resolve(), false) : true));
    });
  }

  static async open(port: number): Promise<EchoClient> {
    return new EchoClient(await connect(port));
  }

  /** Writes `size` bytes and resolves with the ms until all of them came back (through an echo upstream). */
  async roundTrip(size = 1): Promise<number> {
    const started = performance.now();
    const until = this.received + size;
    const back = new Promise<void>((resolve) => this.waiters.push({ bytes: until, resolve }));
    this.socket.write(Buffer.alloc(size, 0x61));
    await back;
    return performance.now() - started;
  }

  /** Sends `text` and resolves with what came back (through an echo upstream) once `length` bytes arrived. */
  async exchange(text: string, length = text.length): Promise<string> {
    let got = '';
    const onData = (chunk: Buffer): void => void (got += chunk.toString());
    this.socket.on('data', onData);
    const done = this.receivedAtLeast(this.received + length);
    this.socket.write(text);
    await done;
    this.socket.off('data', onData);
    return got;
  }

  /** Resolves once `bytes` bytes in total have been received. */
  receivedAtLeast(bytes: number): Promise<void> {
    if (this.received >= bytes) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ bytes, resolve }));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** ms from now until the socket is closed (by 'end' or 'close'), and how (reset or not). */
export async function timeToClose(socket: Socket): Promise<{ ms: number; error: string | undefined }> {
  const started = performance.now();
  let error: string | undefined;
  socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
  if (!socket.destroyed) await Promise.race([once(socket, 'close'), once(socket, 'end')]).catch(() => undefined);
  // A reset may be reported right after.
  await new Promise((resolve) => setImmediate(resolve));
  return { ms: performance.now() - started, error };
}

/** Timers may fire up to a millisecond early relative to performance.now(); lower bounds allow that. */
export const TIMER_SLACK_MS = 5;
