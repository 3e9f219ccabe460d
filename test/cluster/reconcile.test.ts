/**
 * The shared counts against what is really open, when Redis loses its data under the
 * proxies' feet without dropping their connections (a failover to an empty replica, a
 * FLUSHALL): the next script tells each process it is no longer registered, and each puts
 * back what it holds, while new connections keep arriving concurrently (acquires in flight
 * across the re-registration).
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { attempt, clusterFixture, sharedCounts } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

/** The socket of an admitted connection, or undefined when it was refused. */
async function tryConnect(port: number, localAddress: string): Promise<Socket | undefined> {
  const result = await attempt(port, localAddress);
  return result.admitted ? result.socket : undefined;
}

describe('limits_scope: cluster after Redis lost its data', { timeout: 60_000 }, () => {
  const fixture = clusterFixture();
  let proxies: TestProxy[];

  before(async () => {
    proxies = await Promise.all(
      [0, 1].map(() =>
        startProxy({
          cluster: { redis: fixture.redis.url },
          listeners: [
            {
              name: 'db',
              listen: '127.0.0.1:0',
              upstreams: [fixture.upstream.address],
              limits_scope: 'cluster',
              max_connections: 30,
              max_connections_per_ip: 4,
            },
          ],
        }),
      ),
    );
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.stop()));
  });

  it('every process re-registers what it holds; the limits hold again, in total', async () => {
    const open: Socket[] = [];
    const through = (i: number): number => proxies[i % 2]!.port;
    try {
      for (let i = 0; i < 6; i++) open.push((await tryConnect(through(i), `127.0.3.${i + 1}`))!);
      assert.equal((await sharedCounts(fixture.client, 'db')).active, 6);
      await fixture.client.flushall();
      // A burst from many addresses, concurrently through both proxies: the first answers say
      // "not registered", and the re-registrations cross the acquires still in flight.
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => tryConnect(through(i), `127.0.4.${i + 1}`)));
      const admitted = burst.filter((s): s is Socket => s !== undefined);
      open.push(...admitted);
      await eventually(
        async () => ((await sharedCounts(fixture.client, 'db')).active === open.length ? true : undefined),
        `the shared count to match the ${open.length} open connections`,
      );
      const counts = await sharedCounts(fixture.client, 'db');
      assert.equal(counts.processes, 2);
      assert.equal(
        Object.values(counts.ips).reduce((a, b) => a + b, 0),
        open.length,
      );
      // The listener limit holds in total again (30).
      const room = 30 - open.length;
      const more = await Promise.all(Array.from({ length: room + 3 }, (_, i) => tryConnect(through(i), `127.0.5.${i + 1}`)));
      const extra = more.filter((s): s is Socket => s !== undefined);
      open.push(...extra);
      assert.equal(extra.length, room);
      // Everything closes: nothing stays counted.
      for (const socket of open.splice(0)) socket.destroy();
      await eventually(async () => ((await sharedCounts(fixture.client, 'db')).active === 0 ? true : undefined), 'every release to reach Redis');
      assert.deepEqual((await sharedCounts(fixture.client, 'db')).ips, {});
    } finally {
      for (const socket of open) socket.destroy();
    }
  });
});
