/**
 * A real redis-server for the cluster tests, on a free loopback port, without persistence:
 * stop() then start() is a Redis restart that lost every key (the worst case for the proxies).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { after, before } from 'node:test';
import { Redis } from 'ioredis';
import { startWhoami } from './integration.js';
import { refusedPort, type TestServer } from './servers.js';
import { connect } from './sockets.js';

export const REDIS_SERVER = '/usr/bin/redis-server';

export class TestRedis {
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(readonly port: number) {}

  /** Starts a redis-server on a port nobody uses (bound then closed: Redis takes no port 0). */
  static async start(): Promise<TestRedis> {
    const redis = new TestRedis(await refusedPort());
    await redis.startServer();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  get running(): boolean {
    const child = this.child;
    return child?.exitCode === null && child.signalCode === null;
  }

  /** (Re)starts the server on the same port; resolves once it accepts connections. */
  async startServer(): Promise<void> {
    const child = spawn(REDIS_SERVER, ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (this.output.includes('Ready to accept connections')) {
          child.stdout.off('data', onData);
          child.stdout.resume();
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
      child.once('exit', (code) => reject(new Error(`redis-server exited ${code} at start: ${this.output}`)));
    });
  }

  /** SIGSTOP: the server hangs, its connections stay open (a stalled Redis). */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** SIGCONT: the server answers again, the late replies first. */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server (no save: every key is gone when it comes back). */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** A client of the test's own, for reading the shared counts. */
  client(): Redis {
    const client = new Redis(this.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    // While the test has Redis stopped, the reconnect errors are expected.
    client.on('error', () => undefined);
    return client;
  }
}

/** The listener's counts as the proxies keep them in Redis (see src/cluster/scripts.ts). */
export async function sharedCounts(
  client: Redis,
  listener: string,
  prefix = 'tcpproxy',
): Promise<{ active: number; ips: Record<string, number>; processes: number }> {
  const base = `${prefix}:{${listener}}`;
  const [active, ips, processes] = await Promise.all([client.get(`${base}:active`), client.hgetall(`${base}:ips`), client.zcard(`${base}:procs`)]);
  return {
    active: Number(active ?? 0),
    ips: Object.fromEntries(Object.entries(ips).map(([ip, n]) => [ip, Number(n)])),
    processes,
  };
}

export interface ClusterFixture {
  redis: TestRedis;
  /** The test's own client, to read the shared counts. */
  client: Redis;
  /** A whoami upstream that holds each connection until the client ends it. */
  upstream: TestServer;
}

/** Registers before/after hooks for a redis-server, a client and a holding upstream; filled in by before(). */
export function clusterFixture(): ClusterFixture {
  const fixture = {} as ClusterFixture;
  before(async () => {
    fixture.redis = await TestRedis.start();
    fixture.client = fixture.redis.client();
    fixture.upstream = await startWhoami('up', { hold: true });
  });
  after(async () => {
    fixture.client.disconnect();
    await fixture.redis.stop();
    await fixture.upstream.close();
  });
  return fixture;
}

export interface Attempt {
  admitted: boolean;
  socket: Socket;
}

/** Connects through a proxy to a holding whoami upstream: admitted (its name arrives) or closed without a byte. */
export async function attempt(port: number, localAddress?: string): Promise<Attempt> {
  const socket = await connect(port, '127.0.0.1', localAddress);
  const admitted = await new Promise<boolean>((resolve) => {
    socket.once('data', () => resolve(true));
    socket.once('close', () => resolve(false));
    socket.once('end', () => resolve(false));
  });
  if (!admitted) socket.destroy();
  return { admitted, socket };
}
