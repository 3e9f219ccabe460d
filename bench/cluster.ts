/**
 * The cost of `limits_scope: cluster`: new connections/s through one listener whose three
 * limits are checked in Redis (one script per connection, releases batched) against the same
 * limits kept in the process, in the same run. Needs a redis-server binary (Debian's
 * package); without one the row is skipped with a note.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { connectionRate } from './load.js';
import { startTcpproxy } from './proxy-process.js';

const REDIS_SERVER = '/usr/bin/redis-server';

/** Limits high enough never to refuse: the row measures the cost of counting, not refusals. */
const LIMITS = { max_connections: 1_000_000, max_connections_per_ip: 1_000_000, new_connections_per_ip: { limit: 1_000_000, per: '1s' } };

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** [local, cluster] new connections/s, or undefined (and a note) without redis-server. */
export async function clusterConnectionRates(echo: string, clients: number, seconds: number): Promise<[number, number] | undefined> {
  if (!existsSync(REDIS_SERVER)) {
    process.stderr.write(`  limits_scope: cluster row skipped: ${REDIS_SERVER} not found (apt-get install redis-server)\n`);
    return undefined;
  }
  const port = await freePort();
  const redis = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let banner = '';
  await new Promise<void>((resolve, reject) => {
    redis.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
    redis.stdout!.on('data', (chunk: Buffer) => {
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
  try {
    const local = await connectionRate(proxy.ports.get('local')!, clients, seconds);
    const cluster = await connectionRate(proxy.ports.get('cluster')!, clients, seconds);
    return [local, cluster];
  } finally {
    proxy.child.kill('SIGKILL');
    redis.kill('SIGKILL');
  }
}
