/**
 * Reload as build + swap, on the real runtime: what lives as long as the listener (open
 * connections, limit counts, queued clients, endpoint counters) goes through any number of
 * reloads untouched, and reloads leave nothing running behind them.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { buildSnapshot } from '../../src/config/load.js';
import { trackHandles } from '../helpers/handles.js';
import { assertClosedWithoutAByte, startWhoami } from '../helpers/integration.js';
import { connect, readToEnd } from '../helpers/sockets.js';
import { until } from '../helpers/wait.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { startEchoServer } from '../helpers/servers.js';

function reload(proxy: TestProxy, raw: Record<string, unknown>): Promise<unknown> {
  return proxy.runtime.reload(buildSnapshot({ log: { level: 'info' }, ...raw }));
}

function oneListener(keys: Record<string, unknown>): Record<string, unknown> {
  return { listeners: [{ name: 'test', listen: '127.0.0.1:0', ...keys }] };
}

/** A client whose first bytes made it through the proxy and back (the connection is bridged). */
async function bridgedClient(port: number, text: string): Promise<Socket> {
  const socket = await connect(port);
  socket.write(text);
  const [echoed] = (await once(socket, 'data')) as [Buffer];
  assert.equal(echoed.toString(), text);
  return socket;
}

/** Ends the client and answers what came back: what it sent after `text`, echoed. */
async function finish(socket: Socket, text: string): Promise<string> {
  const rest = readToEnd(socket);
  socket.end(text);
  return (await rest).toString();
}

function queueLength(proxy: TestProxy): number {
  return proxy.runtime.stats().listeners[0]!.queue_length;
}

function upstreamActive(proxy: TestProxy, address: string): number | undefined {
  return proxy.runtime.stats().upstreams.find((u) => u.address === address)?.active;
}

describe('reload: state that outlives the plan', { timeout: 30_000 }, () => {
  it('clients queued over max_connections stay queued through reloads and are served in order with their bytes', async () => {
    const echo = await startEchoServer();
    const keys = { upstreams: [echo.address], max_connections: 1, on_limit: 'queue', queue_timeout: '60s' };
    const proxy = await startProxy(oneListener(keys));
    try {
      const holder = await bridgedClient(proxy.port, 'h');
      const first = await connect(proxy.port);
      first.write('one,');
      await until(() => queueLength(proxy) === 1, 'the first waiter queued');
      const second = await connect(proxy.port);
      second.write('two,');
      await until(() => queueLength(proxy) === 2, 'the second waiter queued');
      assert.deepEqual(await reload(proxy, oneListener({ ...keys, max_queue: 5, idle_timeout: '1h' })), { ok: true });
      assert.deepEqual(await reload(proxy, oneListener(keys)), { ok: true });
      assert.equal(queueLength(proxy), 2, 'both still waiting after two reloads');
      const firstData = readToEnd(first);
      assert.equal(await finish(holder, 'bye'), 'bye');
      await until(() => queueLength(proxy) === 1, 'the first waiter served');
      first.end('done');
      assert.equal((await firstData).toString(), 'one,done');
      assert.equal(await finish(second, 'done'), 'two,done');
      await until(() => proxy.runtime.connections().length === 0, 'every connection closed');
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('a client waiting for a full upstream is served after a reload, when the upstream frees', async () => {
    const echo = await startEchoServer();
    const keys = (weight: number) => ({ upstreams: [{ address: echo.address, max_connections: 1, weight }], on_limit: 'queue', queue_timeout: '60s' });
    const proxy = await startProxy(oneListener(keys(1)));
    try {
      const holder = await bridgedClient(proxy.port, 'h');
      const waiter = await connect(proxy.port);
      waiter.write('queued,');
      await until(() => queueLength(proxy) === 1, 'the waiter queued for the upstream');
      assert.deepEqual(await reload(proxy, oneListener(keys(2))), { ok: true });
      assert.equal(queueLength(proxy), 1);
      assert.equal(upstreamActive(proxy, echo.address), 1, "the holder's connection still counts");
      const waited = readToEnd(waiter);
      assert.equal(await finish(holder, 'bye'), 'bye');
      await until(() => queueLength(proxy) === 0, 'the waiter left the queue');
      waiter.end('served');
      assert.equal((await waited).toString(), 'queued,served');
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('a reload that lowers max_connections keeps the open connections and admits again once they are under it', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener({ upstreams: [echo.address], max_connections: 3 }));
    try {
      const open = [await bridgedClient(proxy.port, 'a'), await bridgedClient(proxy.port, 'b'), await bridgedClient(proxy.port, 'c')];
      assert.deepEqual(await reload(proxy, oneListener({ upstreams: [echo.address], max_connections: 1 })), { ok: true });
      await assertClosedWithoutAByte(await connect(proxy.port), 'a client over the lowered limit');
      assert.equal(await finish(open[0]!, '+a'), '+a');
      assert.equal(await finish(open[1]!, '+b'), '+b');
      await until(() => proxy.runtime.connections().length === 1, 'two closed');
      await assertClosedWithoutAByte(await connect(proxy.port), 'a client while one is still open');
      assert.equal(await finish(open[2]!, '+c'), '+c');
      await until(() => proxy.runtime.connections().length === 0, 'all closed');
      const again = await bridgedClient(proxy.port, 'd');
      assert.equal(await finish(again, '+d'), '+d');
      const refusals = proxy
        .accessLog()
        .filter((line) => line.event === 'reject')
        .map((line) => line.reason);
      assert.deepEqual(refusals, ['limit', 'limit']);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('an upstream removed by a reload keeps counting its open connections, also when a later reload brings it back', async () => {
    const a = await startWhoami('A', { hold: true });
    const b = await startWhoami('B', { hold: true });
    const withA = oneListener({ upstreams: [{ address: a.address, max_connections: 1 }, b.address] });
    const proxy = await startProxy(oneListener({ upstreams: [{ address: a.address, max_connections: 1 }] }));
    try {
      const held = await connect(proxy.port);
      const [name] = (await once(held, 'data')) as [Buffer];
      assert.equal(name.toString(), 'A');
      assert.deepEqual(await reload(proxy, oneListener({ upstreams: [b.address] })), { ok: true });
      assert.deepEqual(await reload(proxy, withA), { ok: true });
      assert.equal(upstreamActive(proxy, a.address), 1, 'A came back with its open connection counted');
      // A is at its max_connections: every new client goes to B.
      const names: string[] = [];
      const others: Socket[] = [];
      for (let i = 0; i < 4; i++) {
        const socket = await connect(proxy.port);
        others.push(socket);
        const [chunk] = (await once(socket, 'data')) as [Buffer];
        names.push(chunk.toString());
      }
      assert.deepEqual(names, ['B', 'B', 'B', 'B']);
      held.end();
      await until(() => upstreamActive(proxy, a.address) === 0, "A's connection released");
      for (const socket of others) socket.end();
      await until(() => proxy.runtime.connections().length === 0, 'all closed');
    } finally {
      await proxy.stop();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('reload: nothing left behind', { timeout: 60_000 }, () => {
  it('100 reloads while traffic flows: every byte arrives, and no timer, health check or socket outlives them', async () => {
    const echo = await startEchoServer();
    const other = await startEchoServer();
    // A name (re-resolved on a timer) and active checks (a timer per endpoint); the checks'
    // first run is far off, so none is in flight when the handles are counted.
    const config = (generation: number): Record<string, unknown> => ({
      listeners: ['first', 'second'].map((name) => ({
        name,
        listen: '127.0.0.1:0',
        upstreams: [{ address: echo.address, weight: 1 + (generation % 3) }, `localhost:${other.port}`],
        balance: generation % 2 === 0 ? 'round_robin' : 'least_connections',
        health_check: { interval: generation % 2 === 0 ? '1h' : '2h' },
        max_connections: 100 + generation,
        on_limit: generation % 2 === 0 ? 'queue' : 'reject',
      })),
    });
    const proxy = await startProxy(config(0));
    const handles = trackHandles();
    try {
      handles.start();
      let reloading = true;
      let exchanged = 0;
      const traffic = async (client: number): Promise<void> => {
        for (let round = 0; reloading; round++) {
          const socket = await connect(proxy.port);
          const text = `client ${client} round ${round}`;
          assert.equal(await finish(socket, text), text);
          exchanged++;
        }
      };
      const clients = Promise.all([1, 2, 3, 4].map(traffic));
      for (let generation = 1; generation <= 100; generation++) {
        assert.deepEqual(await reload(proxy, config(generation)), { ok: true }, `reload ${generation}`);
      }
      reloading = false;
      await clients;
      assert.ok(exchanged > 0, 'traffic flowed during the reloads');
      await until(() => proxy.runtime.connections().length === 0, 'every connection closed');
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
      handles.stop();
      // What the last plan runs: a check per endpoint (two or three: localhost may be ::1 too)
      // and a re-resolution timer, per listener. A leak would be one or more per reload.
      const timers = handles.live().filter((type) => type === 'Timeout').length;
      assert.ok(timers <= 2 * 4, `${timers} timers left from the reloads`);
      assert.deepEqual(
        handles.live().filter((type) => type !== 'Timeout'),
        [],
        'sockets left from the traffic or the checks',
      );
      assert.equal(proxy.runtime.stats().listeners.length, 2);
      for (const { name, queue_length } of proxy.runtime.stats().listeners) assert.equal(queue_length, 0, name);
    } finally {
      handles.stop();
      await proxy.stop();
      await Promise.all([echo.close(), other.close()]);
    }
  });
});
