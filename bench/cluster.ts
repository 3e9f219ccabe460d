/**
 * The cost of `limits_scope: cluster`: new connections/s through one listener whose three
 * limits are checked in Redis (one script per connection, releases batched) against the same
 * limits kept in the process, in the same run. Needs a redis-server binary (Debian's
 * package); without one the row is skipped with a note.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connectionRate } from './load.js';
import { freePorts, startTcpproxy } from './proxy-process.js';

const REDIS_SERVER = '/usr/bin/redis-server';

/** Limits high enough never to refuse: the row measures the cost of counting, not refusals. */
const LIMITS = { max_connections: 1_000_000, max_connections_per_ip: 1_000_000, new_connections_per_ip: { limit: 1_000_000, per: '1s' } };

/** CPU time (user + system) of a process so far, in µs, from /proc (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

export interface ClusterRates {
  /** new connections/s */
  rate: number;
  /** CPU µs per new connection: the proxy's, and Redis's (0 for local) */
  proxyCpu: number;
  redisCpu: number;
}

/**
 * New connections/s with the same limits kept locally and in Redis, and the CPU each costs
 * per connection (less sensitive than the rate to a busy machine); undefined without redis-server.
 */
export async function clusterConnectionRates(
  echo: string,
  clients: number,
  seconds: number,
): Promise<{ local: ClusterRates; cluster: ClusterRates } | undefined> {
  if (!existsSync(REDIS_SERVER)) {
    process.stderr.write(`  limits_scope: cluster row skipped: ${REDIS_SERVER} not found (apt-get install redis-server)\n`);
    return undefined;
  }
  const [port] = (await freePorts(1)) as [number];
  const redis = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let banner = '';
  await new Promise<void>((resolve, reject) => {
    redis.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
    redis.stdout.on('data', (chunk: Buffer) => {
      banner += chunk.toString();
      if (banner.includes('Ready to accept connections')) resolve();
    });
  });
  const proxy = await startTcpproxy({
    cluster: { redis: `redis://127.0.0.1:${port}/0` },
    listeners: [
      { name: 'local', listen: '127.0.0.1:0', upstreams: [echo], ...LIMITS },
      { name: 'cluster', listen: '127.0.0.1:0', upstreams: [echo], limits_scope: 'cluster', ...LIMITS },
    ],
  });
  const measure = async (listener: string): Promise<ClusterRates> => {
    const proxyBefore = cpuMicros(proxy.child.pid!);
    const redisBefore = cpuMicros(redis.pid!);
    const started = performance.now();
    const rate = await connectionRate(proxy.ports.get(listener)!, clients, seconds);
    const connections = (rate * (performance.now() - started)) / 1000;
    return { rate, proxyCpu: (cpuMicros(proxy.child.pid!) - proxyBefore) / connections, redisCpu: (cpuMicros(redis.pid!) - redisBefore) / connections };
  };
  try {
    return { local: await measure('local'), cluster: await measure('cluster') };
  } finally {
    proxy.child.kill('SIGKILL');
    redis.kill('SIGKILL');
  }
}
