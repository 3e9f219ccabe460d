/**
 * The cluster tests with several tcpproxy processes (bin/tcpproxy) on one redis-server: the
 * fixture, starting the processes, holding connections through them, and cleaning up after
 * each test (processes killed, Redis running again and empty).
 */
import type { Socket } from 'node:net';
import { afterEach } from 'node:test';
import type { LogLine } from './log-collector.js';
import { ConfigFile, spawnProxy, type ProxyProcess } from './ops.js';
import { attempt, clusterFixture, type Attempt, type ClusterFixture } from './redis.js';
import { eventually } from './wait.js';

export interface Instances {
  readonly fixture: ClusterFixture;
  /**
   * Starts `count` processes (one after the other: workers start slowly on a loaded machine)
   * with one listener "db" with limits_scope: cluster and `listener`'s keys; resolves once
   * every process (each worker) has connected to Redis.
   */
  start(
    count: number,
    listener: Record<string, unknown>,
    cluster?: Record<string, unknown>,
    options?: { workers?: number[]; admin?: boolean },
  ): Promise<ProxyProcess[]>;
  /** attempt(), keeping an admitted connection open until the end of the test. */
  hold(port: number, localAddress?: string): Promise<Attempt>;
  /** The connections held so far (a test may close some). */
  readonly sockets: Socket[];
}

/** Registers the hooks for one describe block. */
export function instancesFixture(): Instances {
  const fixture = clusterFixture();
  const files: ConfigFile[] = [];
  const proxies: ProxyProcess[] = [];
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await Promise.all(proxies.splice(0).map((p) => p.kill()));
    await Promise.all(files.splice(0).map((f) => f.remove()));
    // A test that failed with Redis stopped leaves it to the next one running and empty.
    if (!fixture.redis.running) await fixture.redis.startServer();
    await fixture.client.flushall();
  });

  return {
    fixture,
    sockets,
    async start(count, listener, cluster = {}, options = {}) {
      const started: ProxyProcess[] = [];
      for (let index = 0; index < count; index++) {
        const workers = options.workers?.[index] ?? 1;
        const file = await ConfigFile.create({
          ...(options.admin && { admin: { listen: '127.0.0.1:0' } }),
          shutdown_timeout: '1s',
          workers,
          cluster: { redis: fixture.redis.url, ...cluster },
          listeners: [{ name: 'db', listen: '127.0.0.1:0', upstreams: [fixture.upstream.address], limits_scope: 'cluster', ...listener }],
        });
        files.push(file);
        const proxy = await spawnProxy(file, { listening: workers, admin: options.admin === true, startTimeoutMs: 30_000 });
        proxies.push(proxy);
        await proxy.waitForLines((l) => l.event === 'cluster_up', workers, 30_000);
        started.push(proxy);
      }
      return started;
    },
    async hold(port, localAddress) {
      const result = await attempt(port, localAddress);
      if (result.admitted) sockets.push(result.socket);
      return result;
    },
  };
}

/** The access-log reject lines of these processes, once there are `count` (a line may trail its refusal). */
export async function rejectLines(proxies: ProxyProcess[], count: number): Promise<LogLine[]> {
  const all = (): LogLine[] => proxies.flatMap((p) => p.logs.filter((l) => l.event === 'reject'));
  await eventually(async () => (all().length >= count ? true : undefined), `${count} reject lines`);
  return all();
}
