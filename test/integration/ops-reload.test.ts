/**
 * Operations end to end through the CLI process (bin/tcpproxy --config FILE; build first
 * with `npx tsc -p tsconfig.json`): reload by SIGHUP and POST /api/reload adding and removing
 * upstreams and listeners while a connection stays open, invalid reloads, and the SIGTERM drain.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import net, { type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { refusedPort, startEchoServer, type TestServer } from '../helpers/servers.js';
import {
  ConfigFile,
  limitDescriptors,
  lowestFreeDescriptor,
  openDescriptors,
  roundTrip,
  sampleValue,
  spawnProxy,
  type Connection,
  type ProxyProcess,
  type Stats,
} from '../helpers/ops.js';
import { PRLIMIT, requires } from '../helpers/requirements.js';
import { eventually } from '../helpers/wait.js';
import { closed, connect, readToEnd } from '../helpers/sockets.js';

/** One short connection through `port`; resolves when its echo came back and it closed. */
async function oneShot(port: number, text = 'ping'): Promise<void> {
  const client = await connect(port);
  const reply = readToEnd(client);
  client.end(text);
  assert.equal((await reply).toString(), text);
}

/** Connects to `port` and counts what arrives until the proxy closes the connection. */
async function bytesBeforeClose(port: number): Promise<number> {
  const client = await connect(port);
  let bytes = 0;
  client.on('data', (chunk: Buffer) => (bytes += chunk.length));
  await closed(client);
  client.destroy();
  return bytes;
}

/**
 * A connection served through `proxy` and kept open; the function returned closes it and
 * resolves once the proxy has too (its two descriptors, client and upstream, are free).
 */
async function holdOne(proxy: ProxyProcess): Promise<() => Promise<void>> {
  const held = await connect(proxy.port);
  held.on('error', () => undefined);
  await roundTrip(held, 'held');
  return async () => {
    const closedLine = proxy.waitForLog((l) => l.event === 'close');
    held.destroy();
    await closedLine;
  };
}

/** How many connections each of `servers` has accepted so far. */
function accepted(servers: TestServer[]): number[] {
  return servers.map((s) => s.accepted.length);
}

/** Listener "main" on the given upstreams, then `more` listeners. */
function config(upstreams: string[], more: Record<string, unknown>[] = []) {
  return {
    admin: { listen: '127.0.0.1:0' },
    shutdown_timeout: '5s',
    listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams }, ...more],
  };
}

describe('reload through the CLI process', { timeout: 45_000 }, () => {
  it('SIGHUP and POST /api/reload add and remove upstreams while an established connection keeps working', async () => {
    const [a, b, c] = await Promise.all([startEchoServer(), startEchoServer(), startEchoServer()]);
    const file = await ConfigFile.create(config([a.address]));
    const proxy = await spawnProxy(file, { admin: true });
    try {
      const admin = proxy.admin!;
      const established = await connect(proxy.port);
      await roundTrip(established, 'before');
      assert.equal(a.accepted.length, 1);

      // SIGHUP: A removed, B and C added; a second listener appears (on a port known to be free:
      // the runtime logs no "listening" line for a listener added by a reload, see below).
      const extraPort = await refusedPort();
      await file.write(config([b.address, c.address], [{ name: 'extra', listen: `127.0.0.1:${extraPort}`, upstreams: [a.address] }]));
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog((l) => l.event === 'reload' && l.ok === true);
      await roundTrip(established, 'after sighup'); // the established connection keeps working
      const beforeNew = accepted([a, b, c]);
      for (let i = 0; i < 4; i++) await oneShot(proxy.port);
      const afterNew = accepted([a, b, c]);
      assert.deepEqual(
        afterNew.map((n, i) => n - beforeNew[i]!),
        [0, 2, 2],
        'new connections follow the new upstreams',
      );
      await oneShot(extraPort);
      assert.equal(a.accepted.length, 2, 'the new listener proxies to its upstream');

      let stats = await admin.json<Stats>('/api/stats');
      assert.deepEqual(
        stats.upstreams
          .filter((u) => u.listener === 'main')
          .map((u) => u.address)
          .sort(),
        [b.address, c.address].sort(),
      );
      assert.deepEqual(
        stats.listeners.map((l) => l.name),
        ['main', 'extra'],
      );
      let text = await admin.metrics();
      assert.equal(sampleValue(text, 'tcpproxy_upstream_up', { listener: 'main', upstream: a.address }), undefined, 'a removed upstream leaves the gauges');
      assert.equal(sampleValue(text, 'tcpproxy_upstream_connections_total', { listener: 'main', upstream: a.address }), 1, 'its counters remain');
      assert.equal(sampleValue(text, 'tcpproxy_connections_active', { listener: 'main' }), 1, 'the old connection is still counted');

      // POST /api/reload: A back, C removed, B unchanged; the extra listener is removed.
      await file.write(config([a.address, b.address]));
      const reload = await admin.call('POST', '/api/reload');
      assert.equal(reload.status, 200, reload.body);
      assert.deepEqual(JSON.parse(reload.body), { ok: true });
      await roundTrip(established, 'after post');
      const beforeSecond = accepted([a, b, c]);
      for (let i = 0; i < 4; i++) await oneShot(proxy.port);
      assert.deepEqual(
        accepted([a, b, c]).map((n, i) => n - beforeSecond[i]!),
        [2, 2, 0],
      );
      await assert.rejects(connect(extraPort), /ECONNREFUSED/, 'a removed listener stops listening');
      stats = await admin.json<Stats>('/api/stats');
      assert.equal(stats.upstreams.find((u) => u.address === b.address)?.connections_total, 4, "an unchanged upstream's counters survive the reload");

      // The established connection ends normally, logged against the upstream it started with.
      const [listed, ...others] = await admin.json<Connection[]>('/api/connections');
      assert.deepEqual(others, []);
      assert.equal(listed?.upstream, a.address);
      const ended = readToEnd(established);
      established.end('bye');
      assert.equal((await ended).toString(), 'bye');
      const line = await proxy.waitForLog((l) => l.event === 'close' && l.id === listed.id);
      assert.equal(line.reason, 'client_closed');
      assert.equal(line.bytes_from_client, 'before'.length + 'after sighup'.length + 'after post'.length + 'bye'.length);
      text = await admin.metrics();
      assert.equal(sampleValue(text, 'tcpproxy_connections_active', { listener: 'main' }), 0);
      assert.equal(sampleValue(text, 'tcpproxy_connections_total', { listener: 'main' }), 9);
    } finally {
      await proxy.kill();
      await file.remove();
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });

  it('a failed reload leaves routing, counters, health checks and limits exactly as they were', async () => {
    const [a, b] = await Promise.all([startEchoServer(), startEchoServer()]);
    const deadPort = await refusedPort();
    const dead = `127.0.0.1:${deadPort}`;
    const running = {
      admin: { listen: '127.0.0.1:0' },
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          upstreams: [a.address, dead],
          max_connections: 3,
          max_connections_per_ip: 3,
          health_check: { interval: '100ms', timeout: '1s', healthy_threshold: 1, unhealthy_threshold: 1 },
        },
      ],
    };
    const file = await ConfigFile.create(running);
    // A broken certificate and a plugin that throws on import, next to the config file.
    await writeFile(join(file.dir, 'garbage.pem'), 'this is not a PEM certificate\n');
    await writeFile(join(file.dir, 'broken-plugin.js'), "throw new Error('broken plugin');\n");
    const proxy = await spawnProxy(file, { admin: true });
    const held: Socket[] = [];
    try {
      const admin = proxy.admin!;
      const stateOf = async (address: string): Promise<string | undefined> =>
        (await admin.json<Stats>('/api/stats')).upstreams.find((u) => u.address === address)?.state;
      await eventually(async () => ((await stateOf(dead)) === 'down' ? true : undefined), 'the dead upstream marked down');
      held.push(await connect(proxy.port));
      await roundTrip(held[0]!, 'one');
      const before = await admin.json<Stats>('/api/stats');

      // Each reload below would also move main to upstream B alone, with other limits, another
      // balance and no health checks; each fails only after main's new context was built.
      const changedMain = {
        ...running.listeners[0],
        upstreams: [b.address],
        max_connections: 1,
        max_connections_per_ip: 1,
        balance: 'random',
        health_check: undefined,
      };
      const failing: { what: string; config: unknown; error: RegExp }[] = [
        {
          what: 'a second listener on a port in use',
          config: { ...running, listeners: [changedMain, { name: 'clash', listen: `127.0.0.1:${proxy.port}`, upstreams: [a.address] }] },
          error: /EADDRINUSE/,
        },
        {
          what: 'a certificate that is not one',
          config: { ...running, listeners: [{ ...changedMain, tls: { cert: 'garbage.pem', key: 'garbage.pem' } }] },
          error: /listeners\[0\]\.tls\.(cert|key)/,
        },
        {
          what: 'a plugin that throws when loaded',
          config: { ...running, listeners: [{ ...changedMain, filters: [{ module: './broken-plugin.js' }] }] },
          error: /listeners\[0\]\.filters\[0\].*broken plugin/,
        },
        {
          what: 'an invalid address (and the same changes)',
          config: { ...running, listeners: [{ ...changedMain, upstreams: [b.address, '10.0.0.1'] }] },
          error: /listeners\[0\]\.upstreams\[1\]\.address: expected HOST:PORT, got "10\.0\.0\.1"/,
        },
      ];
      for (const { what, config: next, error } of failing) {
        await file.write(next);
        const reload = await admin.call('POST', '/api/reload');
        assert.equal(reload.status, 400, `${what}: ${reload.body}`);
        const body = JSON.parse(reload.body) as { ok: boolean; error: string };
        assert.equal(body.ok, false);
        assert.match(body.error, error, what);
        const logged = await proxy.waitForLog((l) => l.event === 'reload' && l.ok === false && error.test(String(l.error)));
        assert.equal(logged.level, 'error', 'a failed reload is logged as an error');
      }
      await file.write('{ "listeners": [ broken');
      proxy.child.kill('SIGHUP');
      await proxy.waitForLines((l) => l.event === 'reload' && l.ok === false, failing.length + 1);
      assert.ok(!proxy.logs.some((l) => l.event === 'reload' && l.ok === true));

      // Routing: new connections still go to A only (B, the failed reloads' upstream, sees none).
      await roundTrip(held[0]!, 'two'); // the established connection is untouched
      for (let i = 0; i < 3; i++) await oneShot(proxy.port);
      assert.equal(b.accepted.length, 0, 'a failed reload routed a connection to its upstreams');
      // Counters carry on from where they were: not reset, not doubled, no upstream added or lost.
      const after = await admin.json<Stats>('/api/stats');
      const upstreamA = (stats: Stats) => stats.upstreams.find((u) => u.address === a.address)!;
      assert.deepEqual(after.upstreams.map((u) => u.address).sort(), [a.address, dead].sort());
      assert.equal(upstreamA(after).connections_total, upstreamA(before).connections_total + 3);
      assert.equal(after.listeners[0]!.connections_total, before.listeners[0]!.connections_total + 3);
      assert.equal(after.listeners[0]!.active, 1);
      assert.equal(upstreamA(after).active, 1);
      // Limits: still 3 per address and in all (the failed reloads said 1): two more fit, a fourth is refused.
      for (let i = 0; i < 2; i++) {
        const client = await connect(proxy.port);
        held.push(client);
        await roundTrip(client, 'fits');
      }
      const fourth = await connect(proxy.port);
      fourth.on('error', () => undefined);
      await closed(fourth);
      const refused = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(refused.reason, 'limit');
      // Health: the running checks still run: A healthy, the dead one down until something listens there.
      assert.equal(await stateOf(a.address), 'healthy');
      assert.equal(await stateOf(dead), 'down');
      const revived = net.createServer((socket) => socket.destroy());
      revived.listen(deadPort, '127.0.0.1');
      await once(revived, 'listening');
      try {
        await eventually(async () => ((await stateOf(dead)) === 'healthy' ? true : undefined), 'the revived upstream found healthy by the running checks');
      } finally {
        revived.close();
      }
    } finally {
      for (const socket of held) socket.destroy();
      await proxy.kill();
      await file.remove();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('reload: a listener that moves', { timeout: 20_000 }, () => {
  it('re-binds on its new address; its established connections continue', async () => {
    const a = await startEchoServer();
    const [oldPort, newPort] = [await refusedPort(), await refusedPort()];
    const file = await ConfigFile.create({ listeners: [{ name: 'main', listen: `127.0.0.1:${oldPort}`, upstreams: [a.address] }] });
    const proxy = await spawnProxy(file);
    try {
      const established = await connect(oldPort);
      await roundTrip(established, 'on the old port');
      await file.write({ listeners: [{ name: 'main', listen: `127.0.0.1:${newPort}`, upstreams: [a.address] }] });
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog((l) => l.event === 'reload' && l.ok === true);
      await oneShot(newPort);
      await assert.rejects(connect(oldPort), /ECONNREFUSED/);
      await roundTrip(established, 'still on the old port');
      const ended = readToEnd(established);
      established.end();
      await ended;
      const line = await proxy.waitForLog((l) => l.event === 'close' && l.bytes_from_client === 'on the old port'.length + 'still on the old port'.length);
      assert.equal(line.reason, 'client_closed');
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });
});

describe('reload log lines', { timeout: 20_000 }, () => {
  it('a listener added by a reload logs its "listening" line', async () => {
    const a = await startEchoServer();
    const file = await ConfigFile.create(config([a.address]));
    const proxy = await spawnProxy(file);
    try {
      await file.write(config([a.address], [{ name: 'extra', listen: '127.0.0.1:0', upstreams: [a.address] }]));
      proxy.child.kill('SIGHUP');
      await proxy.waitForLog((l) => l.event === 'reload' && l.ok === true);
      const extra = proxy.logs.find((l) => l.event === 'listening' && l.listener === 'extra');
      assert.ok(extra, 'no "listening" line for the new listener');
      await oneShot(extra.port as number);
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });

  it('a reload with admin.listen on port 0 warns about nothing', async () => {
    const a = await startEchoServer();
    const file = await ConfigFile.create(config([a.address]));
    const proxy = await spawnProxy(file, { admin: true });
    try {
      const reload = await proxy.admin!.call('POST', '/api/reload');
      assert.equal(reload.status, 200);
      await proxy.waitForLog((l) => l.event === 'reload' && l.ok === true);
      assert.deepEqual(
        proxy.logs.filter((l) => l.level === 'warn'),
        [],
      );
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });
});

describe('SIGTERM through the CLI process', { timeout: 30_000 }, () => {
  it('stops accepting, waits for an active connection to finish, then exits 0', async () => {
    const a = await startEchoServer();
    const file = await ConfigFile.create({ ...config([a.address]), shutdown_timeout: '20s' });
    const proxy = await spawnProxy(file, { admin: true });
    try {
      const client = await connect(proxy.port);
      await roundTrip(client, 'hi');
      proxy.child.kill('SIGTERM');
      const draining = await proxy.waitForLog((l) => l.event === 'shutdown');
      assert.equal(draining.active, 1);
      await assert.rejects(connect(proxy.port), /ECONNREFUSED/, 'no new connection is accepted while draining');
      await roundTrip(client, 'still here'); // the active connection keeps working
      assert.equal(proxy.child.exitCode, null, 'the process waits for the connection');
      const reply = readToEnd(client);
      client.end('done');
      assert.equal((await reply).toString(), 'done');
      assert.equal(await proxy.exited, 0);
      const line = proxy.logs.find((l) => l.event === 'close');
      assert.equal(line?.reason, 'client_closed');
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });

  it('a second SIGTERM while draining exits at once', async () => {
    const a = await startEchoServer();
    const file = await ConfigFile.create({ ...config([a.address]), shutdown_timeout: '30s' });
    const proxy = await spawnProxy(file);
    try {
      const client = await connect(proxy.port);
      await roundTrip(client, 'hi');
      const gone = closed(client);
      proxy.child.kill('SIGTERM');
      await proxy.waitForLog((l) => l.event === 'shutdown');
      const signalledAt = Date.now();
      proxy.child.kill('SIGTERM');
      assert.equal(await proxy.exited, 1, 'a forced exit reports failure (1), not a clean drain (0)');
      await gone;
      assert.ok(Date.now() - signalledAt < 5_000, 'did not wait for shutdown_timeout');
      assert.ok(
        proxy.logs.some((l) => l.event === 'signal' && l.level === 'warn'),
        'the forced exit is logged',
      );
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });

  it('closes a connection that outlives shutdown_timeout with reason shutdown, then exits 0', async () => {
    const a = await startEchoServer();
    const file = await ConfigFile.create({ ...config([a.address]), shutdown_timeout: '600ms' });
    const proxy = await spawnProxy(file, { admin: true });
    try {
      const client = await connect(proxy.port);
      await roundTrip(client, 'hi');
      const gone = closed(client);
      const signalledAt = Date.now();
      proxy.child.kill('SIGTERM');
      await gone;
      const waited = Date.now() - signalledAt;
      assert.ok(waited >= 500, `closed after ${waited} ms, before shutdown_timeout`);
      assert.equal(await proxy.exited, 0);
      const line = proxy.logs.find((l) => l.event === 'close');
      assert.equal(line?.reason, 'shutdown');
      assert.equal(line?.bytes_from_client, 2);
      await closed(a.accepted[0]!); // the upstream side is closed too
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });
});

describe('descriptor exhaustion (EMFILE) in the CLI process', { timeout: 60_000 }, () => {
  it('with 40 descriptors to spare, 120 clients: the excess is shed, the held connections are unharmed, the process serves again', async (t) => {
    if (!(await requires(t, PRLIMIT))) return;
    const a = await startEchoServer();
    // 15 bridged connections take 30 descriptors; clients queued over max_connections take one
    // each and no upstream connect (which EMFILE would fail instead), so accept() is what runs out.
    const listener = {
      name: 'main',
      listen: '127.0.0.1:0',
      upstreams: [a.address],
      max_connections: 15,
      on_limit: 'queue',
      max_queue: 1000,
      queue_timeout: '1s',
    };
    const file = await ConfigFile.create({ listeners: [listener] });
    const proxy = await spawnProxy(file);
    const clients: Socket[] = [];
    try {
      const pid = proxy.child.pid!;
      await limitDescriptors(pid, openDescriptors(pid) + 40);
      const outcomes = await Promise.all(
        Array.from({ length: 120 }, async () => {
          const client = net.connect({ port: proxy.port, host: '127.0.0.1' });
          clients.push(client);
          client.on('error', () => undefined);
          return new Promise<'served' | 'shed'>((resolve) => {
            client.once('data', () => resolve('served')); // held open: it keeps its descriptors
            client.once('close', () => resolve('shed'));
            client.once('connect', () => client.write('x'));
          });
        }),
      );
      const served = outcomes.filter((o) => o === 'served').length;
      assert.ok(served > 0 && served <= 15, `${served} of 120 served`);
      // The clients past the descriptors were closed, not left hanging: libuv accepts and
      // closes them itself (its EMFILE trick, with a descriptor it keeps in reserve) and does
      // not report the error, so they get no access-log line and no accept_error is logged.
      const shed = outcomes.filter((o) => o === 'shed').length;
      assert.equal(served + shed, 120);
      assert.ok(shed >= 120 - 15 - 40, `only ${shed} clients shed`);
      assert.equal(proxy.child.exitCode, null, 'the proxy died of descriptor exhaustion');
      // The proxy's own shortage is not the upstream's: it stays healthy throughout.
      assert.deepEqual(
        proxy.logs.filter((l) => l.event === 'upstream_state'),
        [],
      );
      // libuv shed the excess itself: Node reported no accept failure.
      assert.deepEqual(
        proxy.logs.filter((l) => l.event === 'accept_error'),
        [],
      );
      // The connections it holds are unharmed.
      const held = clients.filter((client) => !client.destroyed);
      assert.equal(held.length, served);
      for (const client of held) await roundTrip(client, 'still served');
      for (const client of clients) client.destroy();
      // Descriptors free: new clients are served again (the shedding lasts a moment only).
      await eventually(async () => {
        const client = await connect(proxy.port);
        client.on('error', () => undefined);
        try {
          await roundTrip(client, 'back');
          return true;
        } catch {
          return undefined;
        } finally {
          client.destroy();
        }
      }, 'a client served after the descriptors were freed');
    } finally {
      for (const client of clients) client.destroy();
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });

  // Exactly one descriptor left: the client's accept takes it, so the upstream connect gets
  // EMFILE. That used to eject the upstream (upstream_state healthy->down, connect_failed)
  // and refuse every later client `no_upstream` although the upstream was fine.
  it('out of descriptors while connecting upstream: refused no_upstream (EMFILE), the upstream not blamed, served again once descriptors free', async (t) => {
    if (!(await requires(t, PRLIMIT))) return;
    const a = await startEchoServer();
    const file = await ConfigFile.create(config([a.address]));
    const proxy = await spawnProxy(file, { admin: true });
    try {
      const pid = proxy.child.pid!;
      // Served before the limit: closing it later is what frees descriptors.
      const release = await holdOne(proxy);
      await limitDescriptors(pid, lowestFreeDescriptor(pid) + 1);
      for (const attempt of [1, 2]) {
        assert.equal(await bytesBeforeClose(proxy.port), 0, `client ${attempt} got a byte`);
        const line = (await proxy.waitForLines((l) => l.event === 'reject', attempt))[attempt - 1]!;
        // The second too: the endpoint was not ejected, so it was tried (and failed) again.
        assert.deepEqual({ reason: line.reason, error: line.error }, { reason: 'no_upstream', error: 'EMFILE' }, `client ${attempt}`);
      }
      const warning = proxy.logs.find((l) => l.event === 'resource_shortage');
      assert.deepEqual(
        { level: warning?.level, error: warning?.error, during: warning?.during, upstream: warning?.upstream },
        { level: 'warn', error: 'EMFILE', during: 'connect', upstream: a.address },
      );
      await release();
      // Descriptors free: the next client is served at once (no back-off to wait out).
      await oneShot(proxy.port, 'back');
      assert.deepEqual(
        proxy.logs.filter((l) => l.event === 'upstream_state'),
        [],
      );
      const upstream = (await proxy.admin!.json<Stats>('/api/stats')).upstreams.find((u) => u.address === a.address);
      assert.deepEqual({ state: upstream?.state, connect_failures: upstream?.connect_failures }, { state: 'healthy', connect_failures: 0 });
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });

  it('a health check that finds no descriptor neither passes nor fails: the upstream keeps its state', async (t) => {
    if (!(await requires(t, PRLIMIT))) return;
    const a = await startEchoServer();
    // Checks far apart: the descriptor count is read between two of them (a check holds one).
    const checks = { interval: '2s', timeout: '1s', healthy_threshold: 1, unhealthy_threshold: 1 };
    const file = await ConfigFile.create({ listeners: [{ name: 'main', listen: '127.0.0.1:0', upstreams: [a.address], health_check: checks }] });
    const proxy = await spawnProxy(file);
    try {
      const pid = proxy.child.pid!;
      const release = await holdOne(proxy);
      // A check just ended (the proxy closed its socket first): the next is an interval away.
      await new Promise<void>((resolve) => a.server.once('connection', (check: Socket) => check.once('close', () => resolve())));
      await limitDescriptors(pid, lowestFreeDescriptor(pid)); // none left: every check gets EMFILE
      // Either the skipped check's warning, or (the bug) the upstream taken down for it.
      const first = await proxy.waitForLog((l) => l.event === 'resource_shortage' || l.event === 'upstream_state');
      assert.deepEqual(
        { event: first.event, error: first.error, during: first.during, upstream: first.upstream },
        { event: 'resource_shortage', error: 'EMFILE', during: 'health_check', upstream: a.address },
      );
      await release();
      // Two descriptors free, but a check may take one of them for a moment: wait for a client served.
      await eventually(async () => (await oneShot(proxy.port, 'back'), true), 'a client served after the descriptors were freed');
      assert.deepEqual(
        proxy.logs.filter((l) => l.event === 'upstream_state'),
        [],
      );
    } finally {
      await proxy.kill();
      await file.remove();
      await a.close();
    }
  });
});
