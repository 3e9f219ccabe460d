/**
 * Load balancing end to end (issue 3): real whoami upstreams behind the in-process proxy.
 * Distribution per algorithm, failover on refusal and on connect timeout, active health
 * checks taking an upstream out and back, and refusals when no upstream can take a client.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, it } from 'node:test';
import { assertClosedWithoutAByte, endHeld, holdConnection, startWhoami, waitForLogCount, whoAnswers } from '../helpers/integration.js';
import { buildSnapshot } from '../../src/config/load.js';
import { oneListener, startProxy, type TestProxy } from '../helpers/proxy.js';
import { refusedPort, startBlackHole, startServer, type TestServer } from '../helpers/servers.js';
import { until } from '../helpers/wait.js';
import { connect, readToEnd } from '../helpers/sockets.js';

/** Starts whoami upstreams named a, b, c ... */
async function whoamis(count: number, options: { hold?: boolean } = {}): Promise<TestServer[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startWhoami(String.fromCharCode(97 + i), options)));
}

async function closeAll(proxy: TestProxy | undefined, servers: TestServer[]): Promise<void> {
  await proxy?.stop();
  await Promise.all(servers.map((server) => server.close()));
}

function tally(names: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of names) counts[name] = (counts[name] ?? 0) + 1;
  return counts;
}

function upstreamStats(proxy: TestProxy, address: string) {
  const found = proxy.runtime.stats().upstreams.find((u) => u.address === address);
  assert.ok(found, `no stats for upstream ${address}`);
  return found;
}

/** Each answer from a server that echoes after writing its name: "name" + what it got. */
function startNamedEcho(name: string): Promise<TestServer> {
  return startServer((socket) => {
    socket.write(name + ':');
    socket.pipe(socket);
  });
}

describe('round_robin', { timeout: 30_000 }, () => {
  it('is exact: every 3 picks over 3 equal upstreams visit each once, in config order', async () => {
    const servers = await whoamis(3);
    const proxy = await startProxy(oneListener(servers.map((s) => s.address)));
    try {
      const answers: string[] = [];
      for (let i = 0; i < 12; i++) answers.push(await whoAnswers(proxy.port));
      assert.equal(answers.join(''), 'abcabcabcabc');
    } finally {
      await closeAll(proxy, servers);
    }
  });

  it('weights 1:3 give exactly 1 and 3 of every 4 picks, interleaved', async () => {
    const servers = await whoamis(2);
    const proxy = await startProxy(
      oneListener([
        { address: servers[0]!.address, weight: 1 },
        { address: servers[1]!.address, weight: 3 },
      ]),
    );
    try {
      const answers: string[] = [];
      for (let i = 0; i < 40; i++) answers.push(await whoAnswers(proxy.port));
      for (let window = 0; window < 40; window += 4) {
        assert.deepEqual(tally(answers.slice(window, window + 4)), { a: 1, b: 3 }, `picks ${window}..${window + 3}: ${answers.join('')}`);
      }
      // Smooth (as nginx): never the whole weight of b in one burst across windows.
      assert.ok(!answers.join('').includes('bbbb'), `bursty: ${answers.join('')}`);
    } finally {
      await closeAll(proxy, servers);
    }
  });

  it('goes on concurrently: 30 simultaneous clients over 3 upstreams split 10/10/10', async () => {
    const servers = await whoamis(3);
    const proxy = await startProxy(oneListener(servers.map((s) => s.address)));
    try {
      const answers = await Promise.all(Array.from({ length: 30 }, () => whoAnswers(proxy.port)));
      assert.deepEqual(tally(answers), { a: 10, b: 10, c: 10 });
    } finally {
      await closeAll(proxy, servers);
    }
  });
});

describe('least_connections', { timeout: 30_000 }, () => {
  it('sends each new client to an upstream with the fewest active connections', async () => {
    const servers = await whoamis(3, { hold: true });
    const proxy = await startProxy(
      oneListener(
        servers.map((s) => s.address),
        { balance: 'least_connections' },
      ),
    );
    const held: { name: string; socket: net.Socket }[] = [];
    const activeByName = (): Record<string, number> => {
      const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
      for (const connection of held) counts[connection.name]!++;
      return counts;
    };
    try {
      // 6 held connections: 2 each.
      for (let i = 0; i < 6; i++) held.push(await holdConnection(proxy.port));
      assert.deepEqual(activeByName(), { a: 2, b: 2, c: 2 });
      // Free both of a's and one of b's: a 0, b 1, c 2.
      for (const [name, count] of [
        ['a', 2],
        ['b', 1],
      ] as const) {
        for (let i = 0; i < count; i++) {
          const index = held.findIndex((connection) => connection.name === name);
          await endHeld(proxy, held.splice(index, 1)[0]!.socket);
        }
      }
      assert.deepEqual(activeByName(), { a: 0, b: 1, c: 2 });
      // The proxy's own view agrees with what the upstreams hold.
      for (const server of servers) {
        assert.equal(upstreamStats(proxy, server.address).active, activeByName()[String.fromCharCode(97 + servers.indexOf(server))]);
      }
      // Each new client goes to a least-loaded upstream: a, then a or b, ... until level.
      for (let i = 0; i < 3; i++) {
        const before = activeByName();
        const fewest = Math.min(...Object.values(before));
        const next = await holdConnection(proxy.port);
        assert.equal(before[next.name], fewest, `client ${i} went to ${next.name} with ${JSON.stringify(before)}`);
        held.push(next);
      }
      assert.deepEqual(activeByName(), { a: 2, b: 2, c: 2 });
    } finally {
      for (const connection of held) connection.socket.destroy();
      await closeAll(proxy, servers);
    }
  });

  it('breaks ties in turn: short connections rotate over equal upstreams', async () => {
    const servers = await whoamis(3);
    const proxy = await startProxy(
      oneListener(
        servers.map((s) => s.address),
        { balance: 'least_connections' },
      ),
    );
    try {
      const answers: string[] = [];
      for (let i = 0; i < 9; i++) {
        answers.push(await whoAnswers(proxy.port));
        // The pool counts a connection until the proxy has logged its close.
        await waitForLogCount(proxy, (line) => line.event === 'close', i + 1);
      }
      assert.deepEqual(tally(answers), { a: 3, b: 3, c: 3 }, answers.join(''));
    } finally {
      await closeAll(proxy, servers);
    }
  });
});

describe('source_hash', { timeout: 30_000 }, () => {
  const sources = Array.from({ length: 20 }, (_, i) => `127.0.0.${10 + i}`);

  it('sends the same source address to the same upstream, and spreads 20 addresses', async () => {
    const servers = await whoamis(5);
    const proxy = await startProxy(
      oneListener(
        servers.map((s) => s.address),
        { balance: 'source_hash' },
      ),
    );
    try {
      const chosen = new Map<string, string>();
      for (let round = 0; round < 3; round++) {
        for (const source of sources) {
          const name = await whoAnswers(proxy.port, source);
          if (round === 0) chosen.set(source, name);
          else assert.equal(name, chosen.get(source), `${source} moved from ${chosen.get(source)} to ${name}`);
        }
      }
      const used = tally([...chosen.values()]);
      assert.ok(Object.keys(used).length >= 4, `20 addresses over 5 upstreams used only ${JSON.stringify(used)}`);
      assert.ok(Math.max(...Object.values(used)) <= 10, `one upstream took more than half: ${JSON.stringify(used)}`);
    } finally {
      await closeAll(proxy, servers);
    }
  });

  it('a reload asked for while another runs is not lost: it runs next, and the later config wins', async () => {
    const servers = await whoamis(3);
    const [a, b, c] = servers as [TestServer, TestServer, TestServer];
    const proxy = await startProxy(oneListener([a.address]));
    try {
      const config = (address: string) => buildSnapshot({ log: { level: 'info' }, ...oneListener([address]) });
      const [first, second] = await Promise.all([proxy.runtime.reload(config(b.address)), proxy.runtime.reload(config(c.address))]);
      assert.deepEqual([first, second], [{ ok: true }, { ok: true }]);
      assert.equal(await whoAnswers(proxy.port), 'c');
    } finally {
      await closeAll(proxy, servers);
    }
  });

  it('when one of 5 upstreams is removed (reload), only its clients move', async () => {
    const servers = await whoamis(5);
    const addresses = servers.map((s) => s.address);
    const proxy = await startProxy(oneListener(addresses, { balance: 'source_hash' }));
    // More addresses than above so that "only its share moves" is measured, not guessed.
    const many = Array.from({ length: 100 }, (_, i) => `127.0.1.${i + 1}`);
    try {
      const before = new Map<string, string>();
      for (const source of many) before.set(source, await whoAnswers(proxy.port, source));
      // Same listen address as configured ("127.0.0.1:0"): the bound listener is kept.
      const next = {
        log: { level: 'info' },
        ...oneListener(
          addresses.filter((_, i) => i !== 2),
          { balance: 'source_hash' },
        ),
      };
      assert.deepEqual(await proxy.runtime.reload(buildSnapshot(next)), { ok: true });
      let movedOthers = 0;
      for (const source of many) {
        const after = await whoAnswers(proxy.port, source);
        assert.notEqual(after, 'c', `${source} still sent to the removed upstream`);
        if (before.get(source) !== 'c' && after !== before.get(source)) movedOthers++;
      }
      const kept = many.filter((source) => before.get(source) !== 'c').length;
      // Maglev: close to minimal disruption; allow a few percent beyond the removed share.
      assert.ok(movedOthers <= Math.ceil(kept * 0.1), `${movedOthers} of ${kept} clients of the remaining upstreams moved`);
    } finally {
      await closeAll(proxy, servers);
    }
  });

  it('a client whose upstream is down goes elsewhere, and the others stay put', async () => {
    const servers = await whoamis(3);
    const proxy = await startProxy(
      oneListener(
        servers.map((s) => s.address),
        {
          balance: 'source_hash',
          health_check: { interval: '50ms', timeout: '200ms', healthy_threshold: 1, unhealthy_threshold: 1 },
        },
      ),
    );
    try {
      const before = new Map<string, string>();
      for (const source of sources) before.set(source, await whoAnswers(proxy.port, source));
      const victim = before.get(sources[0]!)!;
      const victimServer = servers[victim.charCodeAt(0) - 97]!;
      await victimServer.close();
      await proxy.waitForLog((l) => l.event === 'upstream_state' && l.upstream === victimServer.address && l.to === 'down');
      for (const source of sources) {
        const after = await whoAnswers(proxy.port, source);
        if (before.get(source) === victim) assert.notEqual(after, victim);
        else assert.equal(after, before.get(source), `${source} moved though its upstream is healthy`);
      }
    } finally {
      await closeAll(
        proxy,
        servers.filter((s) => s.server.listening),
      );
    }
  });
});

describe('failover and retries', { timeout: 30_000 }, () => {
  it('an upstream refusing connections is skipped invisibly: every client is served', async () => {
    const dead = await refusedPort();
    const servers = [await startNamedEcho('a'), await startNamedEcho('b')];
    const proxy = await startProxy(oneListener([`127.0.0.1:${dead}`, ...servers.map((s) => s.address)], { connect_retries: 2 }));
    try {
      for (let i = 0; i < 6; i++) {
        const client = await connect(proxy.port);
        const payload = randomBytes(1024).toString('hex');
        // Sent at once, while the proxy may still be failing over: must arrive all the same.
        const reply = readToEnd(client);
        client.end(payload);
        const text = (await reply).toString();
        assert.match(text, /^[ab]:/);
        assert.equal(text.slice(2), payload);
      }
      assert.equal(proxy.accessLog().filter((l) => l.event === 'reject').length, 0);
      // Passive detection: the dead upstream was tried once, then ejected.
      const deadStats = upstreamStats(proxy, `127.0.0.1:${dead}`);
      assert.equal(deadStats.state, 'down');
      assert.equal(deadStats.connect_failures, 1);
      assert.equal(deadStats.active, 0);
    } finally {
      await closeAll(proxy, servers);
    }
  });

  it('a black-holed upstream times out after connect_timeout and the client is served elsewhere', async () => {
    const hole = await startBlackHole();
    const server = await startNamedEcho('a');
    const proxy = await startProxy(oneListener([`127.0.0.1:${hole.port}`, server.address], { connect_timeout: '300ms', connect_retries: 1 }));
    try {
      const started = Date.now();
      const client = await connect(proxy.port);
      const reply = readToEnd(client);
      client.end('hello');
      assert.equal((await reply).toString(), 'a:hello');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 280, `served after ${elapsed} ms: the black hole was not tried first`);
      assert.ok(elapsed < 3_000, `served after ${elapsed} ms`);
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.upstream, server.address);
      assert.equal(upstreamStats(proxy, `127.0.0.1:${hole.port}`).state, 'down');
      // Ejected: the next client is not sent to the black hole again.
      const second = await connect(proxy.port);
      const secondReply = readToEnd(second);
      second.end('again');
      assert.equal((await secondReply).toString(), 'a:again');
      const holeStats = upstreamStats(proxy, `127.0.0.1:${hole.port}`);
      assert.equal(holeStats.connect_failures, 1, 'the black-holed upstream was tried again');
      assert.equal(holeStats.active, 0);
    } finally {
      await proxy.stop();
      await server.close();
      await hole.close();
    }
  });

  it('without health checks, an ejected upstream is tried again after its back-off', async () => {
    const port = await refusedPort();
    const b = await startWhoami('b');
    const proxy = await startProxy(oneListener([`127.0.0.1:${port}`, b.address]));
    let revived: TestServer | undefined;
    try {
      assert.equal(await whoAnswers(proxy.port), 'b'); // a refused, retried on b
      const down = await proxy.waitForLog((l) => l.event === 'upstream_state' && l.to === 'down');
      assert.equal(down.reason, 'connect_failed');
      revived = await startWhoami('a', { port });
      // Until the back-off runs out (1 s by default), a gets nothing though it listens again.
      assert.equal(await whoAnswers(proxy.port), 'b');
      assert.equal(revived.accepted.length, 0);
      const up = await proxy.waitForLog((l) => l.event === 'upstream_state' && l.to === 'healthy', 5_000);
      assert.equal(up.reason, 'backoff_expired');
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await whoAnswers(proxy.port));
      assert.deepEqual(tally(answers), { a: 2, b: 2 });
    } finally {
      await closeAll(proxy, [b, ...(revived ? [revived] : [])]);
    }
  });

  it('with connect_retries 0, a refused connect is a no_upstream refusal', async () => {
    const dead = await refusedPort();
    const server = await startWhoami('a');
    const proxy = await startProxy(oneListener([`127.0.0.1:${dead}`, server.address], { connect_retries: 0 }));
    try {
      const client = await connect(proxy.port);
      await assertClosedWithoutAByte(client);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'no_upstream');
      // The next one is not sent to the ejected upstream.
      assert.equal(await whoAnswers(proxy.port), 'a');
    } finally {
      await closeAll(proxy, [server]);
    }
  });
});

describe('active health checks', { timeout: 30_000 }, () => {
  it('take a dead upstream out and bring it back when it listens again on the same port', async () => {
    const servers = await whoamis(2);
    const [a, b] = servers as [TestServer, TestServer];
    const proxy = await startProxy(
      oneListener([a.address, b.address], {
        health_check: { interval: '50ms', timeout: '200ms', healthy_threshold: 2, unhealthy_threshold: 2 },
      }),
    );
    let revived: TestServer | undefined;
    try {
      assert.equal(upstreamStats(proxy, a.address).state, 'healthy');
      await a.close();
      const down = await proxy.waitForLog((l) => l.event === 'upstream_state' && l.upstream === a.address && l.to === 'down');
      assert.equal(down.reason, 'health_check_failed');
      assert.equal(upstreamStats(proxy, a.address).state, 'down');
      // Out of rotation: every client goes to b, none is refused or delayed by a retry.
      for (let i = 0; i < 4; i++) assert.equal(await whoAnswers(proxy.port), 'b');
      assert.equal(upstreamStats(proxy, a.address).connect_failures, 0, 'a connect was attempted to the down upstream');

      revived = await startWhoami('a', { port: a.port });
      const up = await proxy.waitForLog((l) => l.event === 'upstream_state' && l.upstream === a.address && l.to === 'healthy');
      assert.equal(up.reason, 'health_check_passed');
      assert.equal(upstreamStats(proxy, a.address).state, 'healthy');
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await whoAnswers(proxy.port));
      assert.deepEqual(tally(answers), { a: 2, b: 2 });
    } finally {
      await proxy.stop();
      await b.close();
      await revived?.close();
    }
  });

  it('send/expect: an upstream that answers the wrong thing is taken out', async () => {
    const good = await startServer((socket) => socket.on('data', () => socket.end('+OK\r\n')));
    const bad = await startServer((socket) => socket.on('data', () => socket.end('-ERR\r\n')));
    const proxy = await startProxy(
      oneListener([good.address, bad.address], {
        health_check: { interval: '50ms', timeout: '200ms', healthy_threshold: 1, unhealthy_threshold: 1, send: 'PING\r\n', expect: '/^\\+OK/' },
      }),
    );
    try {
      await proxy.waitForLog((l) => l.event === 'upstream_state' && l.upstream === bad.address && l.to === 'down');
      assert.equal(upstreamStats(proxy, good.address).state, 'healthy');
    } finally {
      await closeAll(proxy, [good, bad]);
    }
  });
});

describe('refusals when no upstream can take a client', { timeout: 30_000 }, () => {
  it('all upstreams refusing: the client is refused with no_upstream, without a byte', async () => {
    const dead = [await refusedPort(), await refusedPort()];
    const proxy = await startProxy(
      oneListener(
        dead.map((port) => `127.0.0.1:${port}`),
        { connect_retries: 1 },
      ),
    );
    try {
      // First client: both tried and failed. Second: both already ejected.
      for (let i = 0; i < 2; i++) {
        const client = await connect(proxy.port);
        client.write('hello?');
        await assertClosedWithoutAByte(client);
      }
      await waitForLogCount(proxy, (l) => l.event === 'reject', 2);
      const rejects = proxy.accessLog();
      assert.deepEqual(
        rejects.map((l) => [l.event, l.reason, l.upstream]),
        [
          ['reject', 'no_upstream', null],
          ['reject', 'no_upstream', null],
        ],
      );
      assert.equal(proxy.runtime.stats().listeners[0]!.rejections.no_upstream, 2);
    } finally {
      await proxy.stop();
    }
  });

  it('all upstreams down by health check: refused at once with no_upstream', async () => {
    const server = await startWhoami('a');
    const proxy = await startProxy(
      oneListener([server.address], { health_check: { interval: '50ms', timeout: '200ms', healthy_threshold: 1, unhealthy_threshold: 1 } }),
    );
    try {
      await server.close();
      await proxy.waitForLog((l) => l.event === 'upstream_state' && l.to === 'down');
      const client = await connect(proxy.port);
      await assertClosedWithoutAByte(client);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'no_upstream');
      assert.equal(upstreamStats(proxy, server.address).connect_failures, 0, 'a connect was attempted to the down upstream');
    } finally {
      await proxy.stop();
    }
  });

  it('max_connections per upstream: a full upstream is skipped; all full -> reason limit', async () => {
    const servers = await whoamis(2, { hold: true });
    const [a, b] = servers as [TestServer, TestServer];
    const proxy = await startProxy(
      oneListener([
        { address: a.address, max_connections: 1 },
        { address: b.address, max_connections: 2 },
      ]),
    );
    const held: net.Socket[] = [];
    try {
      const names: string[] = [];
      for (let i = 0; i < 3; i++) {
        const connection = await holdConnection(proxy.port);
        held.push(connection.socket);
        names.push(connection.name);
      }
      // Round robin would give a b a; a is full after one, so b takes the third.
      assert.deepEqual(names, ['a', 'b', 'b']);
      const refused = await connect(proxy.port);
      await assertClosedWithoutAByte(refused);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'limit');
      assert.equal(a.accepted.length + b.accepted.length, 3, 'the refused client reached an upstream');
      // A slot frees: the next client gets it.
      await endHeld(proxy, held.shift()!);
      const next = await holdConnection(proxy.port);
      held.push(next.socket);
      assert.equal(next.name, 'a');
    } finally {
      for (const socket of held) socket.destroy();
      await closeAll(proxy, servers);
    }
  });
});

describe('on_limit: queue with every upstream full', { timeout: 30_000 }, () => {
  const queueLength = (proxy: TestProxy): number => proxy.runtime.stats().listeners[0]!.queue_length;

  /** Reloads with the one upstream at `maxConnections`, still queueing (a fresh config object, a real reload). */
  async function reloadQueueing(proxy: TestProxy, address: string, maxConnections: number): Promise<void> {
    const next = { log: { level: 'info' }, ...oneListener([{ address, max_connections: maxConnections }], { on_limit: 'queue', queue_timeout: '9s' }) };
    assert.deepEqual(await proxy.runtime.reload(buildSnapshot(next)), { ok: true });
  }

  /** One whoami upstream taking one connection at a time, and a proxy queueing for it. */
  async function fullUpstream(options: { queue_timeout?: string; max_queue?: number } = {}) {
    const a = await startWhoami('a', { hold: true });
    const proxy = await startProxy(oneListener([{ address: a.address, max_connections: 1 }], { on_limit: 'queue', queue_timeout: '10s', ...options }));
    const held = await holdConnection(proxy.port);
    return { a, proxy, held: held.socket };
  }

  it('a client waits for the upstream slot instead of being refused, and gets it when it frees', async () => {
    const { a, proxy, held } = await fullUpstream();
    const sockets = [held];
    try {
      const waiting = holdConnection(proxy.port);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      assert.equal(a.accepted.length, 1, 'the queued client reached the full upstream');
      await endHeld(proxy, held);
      const next = await waiting;
      sockets.push(next.socket);
      assert.equal(next.name, 'a');
      assert.equal(queueLength(proxy), 0);
      assert.equal(proxy.accessLog().filter((line) => line.event === 'reject').length, 0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('what a queued client sends meanwhile arrives intact once it gets the upstream', async () => {
    const echo = await startNamedEcho('e');
    const proxy = await startProxy(oneListener([{ address: echo.address, max_connections: 1 }], { on_limit: 'queue', queue_timeout: '10s' }));
    try {
      const first = await connect(proxy.port);
      await once(first, 'data');
      const payload = randomBytes(1 << 20);
      const second = await connect(proxy.port);
      second.end(payload);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      await endHeld(proxy, first);
      const echoed = await readToEnd(second);
      assert.equal(echoed.subarray(0, 2).toString(), 'e:');
      assert.ok(echoed.subarray(2).equals(payload), 'the bytes sent while queued did not arrive intact');
    } finally {
      await closeAll(proxy, [echo]);
    }
  });

  it('waiters get the upstream in arrival order', async () => {
    const { a, proxy, held } = await fullUpstream();
    const sockets = [held];
    try {
      const second = await connect(proxy.port);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      const third = await connect(proxy.port);
      await until(() => queueLength(proxy) === 2, 'the third client queued');
      sockets.push(second, third);
      let thirdGotIn = false;
      third.once('data', () => (thirdGotIn = true));
      await endHeld(proxy, held);
      await once(second, 'data');
      assert.equal(thirdGotIn, false, 'the later client got the slot first');
      assert.equal(queueLength(proxy), 1);
      await endHeld(proxy, second);
      await once(third, 'data');
      assert.equal(queueLength(proxy), 0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('refused with queue_timeout when no slot frees in time, without a byte or an upstream connection', async () => {
    const { a, proxy, held } = await fullUpstream({ queue_timeout: '200ms' });
    try {
      const waiting = await connect(proxy.port);
      await assertClosedWithoutAByte(waiting);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'queue_timeout');
      assert.equal(a.accepted.length, 1);
      assert.equal(queueLength(proxy), 0);
      assert.equal(proxy.runtime.stats().listeners[0]!.rejections.queue_timeout, 1);
    } finally {
      held.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('beyond max_queue a client is refused limit', async () => {
    const { a, proxy, held } = await fullUpstream({ max_queue: 1 });
    const sockets = [held];
    try {
      sockets.push(await connect(proxy.port));
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      const third = await connect(proxy.port);
      await assertClosedWithoutAByte(third);
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'limit');
      assert.equal(queueLength(proxy), 1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('a client queued before a reload gets the slot freed after it', async () => {
    const { a, proxy, held } = await fullUpstream();
    const sockets = [held];
    try {
      const waiting = holdConnection(proxy.port);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      await reloadQueueing(proxy, a.address, 1);
      await endHeld(proxy, held);
      const served = await waiting;
      sockets.push(served.socket);
      assert.equal(served.name, 'a');
      assert.equal(upstreamStats(proxy, a.address).active, 1, 'the new pool does not count the connection');
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('a waiter whose turn ends in a refused connect queues again, and its bytes still all arrive (backpressure intact)', async () => {
    // A and B take one connection each. X sends 8 MiB while both are full; then A goes away
    // (X's turn: refused, queued again) and B frees, with a server slow to start reading.
    const a = await startWhoami('a', { hold: true });
    let receivedByB = 0;
    const b = await startServer((socket) => {
      socket.write('b');
      if (b.accepted.length === 1) return void socket.resume().on('end', () => socket.end());
      socket.pause();
      setTimeout(() => socket.on('data', (chunk: Buffer) => (receivedByB += chunk.length)).resume(), 300);
    });
    const proxy = await startProxy(
      oneListener(
        [
          { address: a.address, max_connections: 1 },
          { address: b.address, max_connections: 1 },
        ],
        { on_limit: 'queue', queue_timeout: '10s' },
      ),
    );
    const sockets: net.Socket[] = [];
    try {
      const onA = await holdConnection(proxy.port);
      const onB = await holdConnection(proxy.port);
      sockets.push(onA.socket, onB.socket);
      const x = await connect(proxy.port);
      sockets.push(x);
      x.write(randomBytes(8 << 20));
      await until(() => queueLength(proxy) === 1, 'X queued');
      await a.close(); // A refuses from now on
      onA.socket.destroy(); // and its slot frees: X's turn, refused
      await proxy.waitForLog((l) => l.event === 'upstream_state' && l.upstream === a.address && l.to === 'down');
      // X had its turn (the refusal above was X's connect): it is back in the queue, not closed.
      await until(() => queueLength(proxy) === 1, 'X queued again');
      assert.equal(upstreamStats(proxy, a.address).connect_failures, 1);
      const xLabel = `${x.localAddress}:${x.localPort}`;
      assert.equal(proxy.accessLog().filter((l) => l.client === xLabel).length, 0, 'X was closed instead of queued again');
      assert.equal(x.destroyed, false);
      onB.socket.destroy();
      await until(() => receivedByB === 8 << 20, 'all 8 MiB at B', 15_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeAll(proxy, [b]);
    }
  });

  it('a reload that raises max_connections serves the waiters at once', async () => {
    const { a, proxy, held } = await fullUpstream();
    const sockets = [held];
    try {
      const waiting = holdConnection(proxy.port);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      await reloadQueueing(proxy, a.address, 2);
      const served = await waiting;
      sockets.push(served.socket);
      assert.equal(served.name, 'a');
    } finally {
      for (const socket of sockets) socket.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('waiters from before a reload stay counted in queue_length and are refused shutdown on shutdown', async () => {
    const { a, proxy, held } = await fullUpstream();
    try {
      const waiting = await connect(proxy.port);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      await reloadQueueing(proxy, a.address, 1);
      assert.equal(queueLength(proxy), 1, 'the waiter vanished from queue_length with the reload');
      const stopping = proxy.stop();
      await assertClosedWithoutAByte(waiting);
      await stopping;
      const line = await proxy.waitForLog((l) => l.event === 'reject');
      assert.equal(line.reason, 'shutdown');
    } finally {
      held.destroy();
      await closeAll(proxy, [a]);
    }
  });

  it('a queued client that goes away leaves the queue and holds no slot', async () => {
    const { a, proxy, held } = await fullUpstream();
    try {
      const waiting = await connect(proxy.port);
      await until(() => queueLength(proxy) === 1, 'the second client queued');
      waiting.resetAndDestroy();
      await until(() => queueLength(proxy) === 0, 'the departed client to leave the queue');
      await endHeld(proxy, held);
      const next = await holdConnection(proxy.port);
      assert.equal(next.name, 'a');
      next.socket.destroy();
      await until(() => proxy.runtime.stats().listeners[0]!.active === 0, 'no connection left open');
      assert.equal(upstreamStats(proxy, a.address).active, 0);
    } finally {
      held.destroy();
      await closeAll(proxy, [a]);
    }
  });
});
