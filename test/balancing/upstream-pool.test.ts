import assert from 'node:assert/strict';
import { promises as dns } from 'node:dns';
import { describe, it } from 'node:test';
import type { Endpoint } from '../../src/balancing/endpoint.js';
import type { ResolvedAddress } from '../../src/balancing/resolver.js';
import { UpstreamPool, type PoolSettings, type UpstreamPoolOptions, type UpstreamSpec } from '../../src/balancing/upstream-pool.js';
import { trackHandles } from '../helpers/handles.js';
import { stateChange } from './helpers.js';
import { endAtOnce, startServer, type TestServer } from '../helpers/servers.js';
import { pause, within } from '../helpers/wait.js';
import { memoryLogger } from '../helpers/log-collector.js';

function spec(host: string, port: number, extra: Partial<UpstreamSpec> = {}): UpstreamSpec {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return { address, host, port, weight: 1, ...extra };
}

/** A pool with its first plan applied, as a listener starts it. */
async function makePool(options: Partial<UpstreamPoolOptions & PoolSettings> & Pick<PoolSettings, 'upstreams'>) {
  const log = memoryLogger();
  const pool = new UpstreamPool({ listener: 'main', logger: log.logger, ...options });
  pool.apply(await pool.prepare({ balance: 'round_robin', ...options }));
  return { pool, log };
}

function pickMany(pool: UpstreamPool, count: number): (Endpoint | undefined)[] {
  return Array.from({ length: count }, () => pool.pick('10.0.0.1').endpoint);
}

const fastChecks = { intervalMs: 25, timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 };

describe('upstream pool', { timeout: 20_000 }, () => {
  it('health checks take a closed server out and bring it back when it listens again', async () => {
    const a = await startServer(endAtOnce);
    const b = await startServer(endAtOnce);
    const { pool, log } = await makePool({ upstreams: [spec('127.0.0.1', a.port), spec('127.0.0.1', b.port)], healthCheck: fastChecks });
    const [epA, epB] = pool.endpoints() as [Endpoint, Endpoint];
    assert.equal(epA.label, `127.0.0.1:${a.port}`);
    assert.equal(pool.healthyCount(), 2);

    const down = log.next(stateChange(epA.label, 'down'));
    await a.close();
    const line = await within(down, 5_000, 'A down');
    assert.deepEqual(
      { listener: line['listener'], from: line['from'], reason: line.reason, detail: line['detail'] },
      { listener: 'main', from: 'healthy', reason: 'health_check_failed', detail: 'ECONNREFUSED' },
    );
    assert.equal(epA.state, 'down');
    assert.equal(pool.healthyCount(), 1);
    assert.ok(pickMany(pool, 10).every((e) => e === epB));

    const up = log.next(stateChange(epA.label, 'healthy'));
    const again: TestServer = await startServer(endAtOnce, '127.0.0.1', { port: a.port });
    await within(up, 5_000, 'A healthy again');
    assert.equal(pool.healthyCount(), 2);
    assert.ok(pickMany(pool, 4).includes(epA));
    pool.close();
    await Promise.all([again.close(), b.close()]);
  });

  it('uses send/expect to judge an upstream by its reply', async () => {
    const good = await startServer((socket) => socket.on('data', () => socket.end('+PONG\r\n')));
    const bad = await startServer((socket) => socket.on('data', () => socket.end('-LOADING\r\n')));
    const { pool, log } = await makePool({
      upstreams: [spec('127.0.0.1', good.port), spec('127.0.0.1', bad.port)],
      healthCheck: { ...fastChecks, send: Buffer.from('PING\r\n'), expect: /^\+PONG/ },
    });
    const [epGood, epBad] = pool.endpoints() as [Endpoint, Endpoint];
    const line = await within(log.next(stateChange(epBad.label, 'down')), 5_000, 'bad down');
    assert.equal(line['detail'], 'unexpected reply');
    // Checks of the good one have been passing all along.
    await within(new Promise((resolve) => good.server.once('connection', resolve)), 3_000, 'a check of good');
    assert.equal(epGood.state, 'healthy');
    assert.ok(log.lines.every((l) => l['upstream'] !== epGood.label));
    pool.close();
    await Promise.all([good.close(), bad.close()]);
  });

  it('without health checks, ejects on connect failure with exponential back-off', async () => {
    const { pool, log } = await makePool({
      upstreams: [spec('127.0.0.1', 9001), spec('127.0.0.2', 9001)],
      passiveBackoff: { baseMs: 60, maxMs: 150 },
    });
    const [epA, epB] = pool.endpoints() as [Endpoint, Endpoint];
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:9001');

    const started = Date.now();
    pool.reportConnectFailure(epA, refused);
    pool.reportConnectFailure(epA, refused); // a second connect that was already in flight
    assert.equal(epA.state, 'down');
    assert.equal(epA.failures, 2);
    assert.equal(log.lines.filter(stateChange(epA.label, 'down')).length, 1);
    assert.equal(log.lines.find(stateChange(epA.label, 'down'))?.['detail'], `${refused.message}; retry in 60 ms`);
    assert.ok(pickMany(pool, 5).every((e) => e === epB));

    const back = await within(log.next(stateChange(epA.label, 'healthy')), 3_000, 'back-off end');
    assert.equal(back.reason, 'backoff_expired');
    assert.ok(Date.now() - started >= 55);
    assert.ok(pickMany(pool, 2).includes(epA), 'eligible again (half-open)');

    // Fails again at once: twice the back-off; then capped at maxMs.
    assertRetryIn(() => pool.reportConnectFailure(epA, refused), epA, 120);
    await within(log.next(stateChange(epA.label, 'healthy')), 3_000, 'second back-off end');
    assertRetryIn(() => pool.reportConnectFailure(epA, refused), epA, 150);
    await within(log.next(stateChange(epA.label, 'healthy')), 3_000, 'third back-off end');

    // One success resets the back-off.
    pool.reportConnectSuccess(epA);
    assertRetryIn(() => pool.reportConnectFailure(epA, refused), epA, 60);
    pool.close();
  });

  it("a connect failure that is this host's own (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL) blames no endpoint", async () => {
    for (const healthCheck of [undefined, fastChecks]) {
      const { pool, log } = await makePool({
        upstreams: [spec('127.0.0.1', 9001)],
        passiveBackoff: { baseMs: 60, maxMs: 150 },
        ...(healthCheck && { healthCheck }),
      });
      const [endpoint] = pool.endpoints() as [Endpoint];
      for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']) {
        const error = Object.assign(new Error(`connect ${code} 127.0.0.1:9001`), { code });
        assert.equal(pool.reportConnectFailure(endpoint, error), false, code);
      }
      assert.equal(endpoint.state, 'healthy');
      assert.equal(endpoint.failures, 0);
      assert.equal(pool.pick('10.0.0.1').endpoint, endpoint);
      assert.deepEqual(
        log.lines.filter((l) => l.event === 'upstream_state'),
        [],
      );
      // A real failure still counts.
      assert.equal(pool.reportConnectFailure(endpoint, Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), true);
      assert.equal(endpoint.state, 'down');
      pool.close();
    }
  });

  it('with health checks configured, a failed connect takes it out until a check passes', async () => {
    const server = await startServer(endAtOnce);
    const { pool } = await makePool({ upstreams: [spec('127.0.0.1', server.port)], healthCheck: { ...fastChecks, intervalMs: 100 } });
    const [endpoint] = pool.endpoints() as [Endpoint];
    pool.reportConnectFailure(endpoint, new Error('connect ETIMEDOUT'));
    assert.equal(endpoint.state, 'down');
    assert.equal(endpoint.failures, 1);
    assert.equal(pool.pick('10.0.0.1').endpoint, undefined);
    // The server is listening: the next passing check brings it back (no back-off timer).
    while ((endpoint.state as string) !== 'healthy') await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(pool.pick('10.0.0.1').endpoint, endpoint);
    pool.close();
    await server.close();
  });

  it("answers 'limit' when every eligible endpoint is full and 'no_upstream' when none is healthy", async () => {
    const { pool } = await makePool({
      upstreams: [spec('127.0.0.1', 9001, { maxConnections: 1 }), spec('127.0.0.2', 9001, { maxConnections: 2 })],
      balance: 'least_connections',
      passiveBackoff: { baseMs: 60_000, maxMs: 60_000 },
    });
    const [epA, epB] = pool.endpoints() as [Endpoint, Endpoint];
    let released = 0;
    const unsubscribe = pool.onRelease(() => released++);
    for (let i = 0; i < 3; i++) {
      const picked = pool.pick('10.0.0.1');
      assert.ok(picked.endpoint, `pick ${i}`);
      pool.acquire(picked.endpoint);
    }
    assert.deepEqual([epA.active, epB.active], [1, 2]);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'limit' });

    pool.release(epB);
    assert.equal(released, 1);
    assert.equal(pool.pick('10.0.0.1').endpoint, epB);
    assert.deepEqual(pool.pick('10.0.0.1', new Set([epB])), { endpoint: undefined, reason: 'limit' }, 'A is full, B excluded');
    unsubscribe();
    pool.release(epA);
    assert.equal(released, 1);
    assert.deepEqual(pool.pick('10.0.0.1', new Set([epA, epB])), { endpoint: undefined, reason: 'no_upstream' });

    pool.reportConnectFailure(epA, new Error('refused'));
    pool.reportConnectFailure(epB, new Error('refused'));
    assert.equal(pool.healthyCount(), 0);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'no_upstream' });
    assert.deepEqual([epA.total, epB.total], [1, 2]);
    pool.close();
  });

  it('drains and enables an endpoint or a whole upstream (admin)', async () => {
    const lookup = async (): Promise<ResolvedAddress[]> => [
      { address: '127.0.0.2', family: 4 },
      { address: '127.0.0.3', family: 4 },
    ];
    const { pool, log } = await makePool({ upstreams: [spec('127.0.0.1', 9001), spec('svc.test', 9001)], lookup });
    const [one, two, three] = pool.endpoints() as [Endpoint, Endpoint, Endpoint];
    assert.equal(pool.drain(one.label), true);
    assert.equal(one.state, 'draining');
    assert.equal(log.lines.find(stateChange(one.label, 'draining'))?.reason, 'admin_drain');
    assert.ok(pickMany(pool, 6).every((e) => e !== one));
    assert.equal(pool.drain('svc.test:9001'), true);
    assert.deepEqual([two.state, three.state], ['draining', 'draining']);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'no_upstream' });
    assert.equal(pool.drain('10.9.9.9:1'), false);
    assert.equal(pool.enable(one.label), true);
    assert.equal(pool.enable('svc.test:9001'), true);
    assert.equal(pool.healthyCount(), 3);
    pool.close();
  });

  it("resolves 'localhost' through the system resolver into one endpoint per address", async () => {
    const server = await startServer(endAtOnce);
    const { pool } = await makePool({ upstreams: [spec('localhost', server.port, { weight: 2 })] });
    const expected = (await dns.lookup('localhost', { all: true })).map((r) =>
      r.family === 6 ? `[${r.address}]:${server.port}` : `${r.address}:${server.port}`,
    );
    const endpoints = pool.endpoints();
    assert.deepEqual(
      endpoints.map((e) => e.label),
      [...new Set(expected)],
    );
    assert.ok(endpoints.every((e) => e.upstream === `localhost:${server.port}` && e.weight === 2));
    assert.ok(endpoints.some((e) => e.host === '127.0.0.1'));
    pool.close();
    await server.close();
  });

  it('labels IPv6 endpoints with brackets and skips DNS for IP literals', async () => {
    const lookup = async (): Promise<ResolvedAddress[]> => {
      throw new Error('no DNS for literals');
    };
    const { pool } = await makePool({ upstreams: [spec('::1', 9001), spec('127.0.0.1', 9002)], lookup });
    assert.deepEqual(
      pool.endpoints().map((e) => [e.label, e.host]),
      [
        ['[::1]:9001', '::1'],
        ['127.0.0.1:9002', '127.0.0.1'],
      ],
    );
    pool.close();
  });

  it('re-resolves names: new addresses join, vanished ones leave, a failed lookup keeps the last answer', async () => {
    const answers: (ResolvedAddress[] | Error)[] = [
      [
        { address: '127.0.0.1', family: 4 },
        { address: '127.0.0.2', family: 4 },
      ],
      [
        { address: '127.0.0.2', family: 4 },
        { address: '127.0.0.3', family: 4 },
      ],
      new Error('queryA ETIMEOUT svc.test'),
    ];
    const lookup = async (): Promise<ResolvedAddress[]> => {
      const answer = answers.length > 1 ? answers.shift() : answers[0];
      if (answer instanceof Error) throw answer;
      return answer!;
    };
    const { pool, log } = await makePool({ upstreams: [spec('svc.test', 9001, { maxConnections: 1 })], lookup, resolveIntervalMs: 20 });
    const [first, second] = pool.endpoints() as [Endpoint, Endpoint];
    assert.deepEqual([first.label, second.label], ['127.0.0.1:9001', '127.0.0.2:9001']);
    pool.acquire(first);
    pool.acquire(second);

    await within(
      log.next((l) => l.event === 'upstream_resolved'),
      3_000,
      're-resolution',
    );
    const [kept, added] = pool.endpoints() as [Endpoint, Endpoint];
    assert.equal(kept, second, 'a surviving address keeps its endpoint (state, counters)');
    assert.equal(added.label, '127.0.0.3:9001');
    assert.equal(pool.pick('10.0.0.1').endpoint, added);

    // The vanished endpoint's connection ends normally and does not disturb the count.
    pool.release(first);
    assert.equal(first.active, 0);
    pool.acquire(added);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'limit' });

    const failed = await within(
      log.next((l) => l.event === 'upstream_resolve_failed'),
      3_000,
      'failed lookup',
    );
    assert.equal(failed['error'], 'queryA ETIMEOUT svc.test');
    assert.deepEqual(pool.endpoints(), [kept, added]);
    pool.close();
  });

  it('on reload, keeps endpoints with the same label (state, counters, back-off) under the new plan', async () => {
    const upstreams = [spec('127.0.0.1', 9001, { maxConnections: 1 }), spec('127.0.0.2', 9001, { maxConnections: 1 })];
    const { pool, log } = await makePool({ upstreams, passiveBackoff: { baseMs: 80, maxMs: 1_000 } });
    const [epA, epB] = pool.endpoints() as [Endpoint, Endpoint];
    pool.acquire(epA);
    pool.reportConnectFailure(epB, new Error('refused'));
    assert.equal(pool.drain(epA.label), true);

    pool.apply(await pool.prepare({ upstreams: [...upstreams, spec('127.0.0.3', 9001, { maxConnections: 1 })], balance: 'least_connections' }));
    const [newA, newB, newC] = pool.endpoints() as [Endpoint, Endpoint, Endpoint];
    assert.equal(newA, epA);
    assert.equal(newB, epB);
    assert.deepEqual([newA.state, newA.active, newA.total, newB.state, newB.failures], ['draining', 1, 1, 'down', 1]);
    assert.equal(newC.state, 'healthy');
    assert.equal(pool.enable(epA.label), true);

    // A's only slot is taken by a connection from before the reload: full under the new plan too.
    pool.acquire(newC);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'limit' });
    let freed = 0;
    pool.onRelease(() => freed++);
    pool.release(epA);
    assert.equal(freed, 1, 'the release of a connection from before the reload reaches the waiters');
    assert.equal(pool.pick('10.0.0.1').endpoint, epA);

    // B's back-off goes on across the reload.
    await within(log.next(stateChange(epB.label, 'healthy')), 3_000, 'B back-off end');
    assert.equal(pool.healthyCount(), 3);
    pool.close();
  });

  it('a plan that is prepared but never applied (another listener failed) leaves the running pool as it was', async () => {
    const upstreams = [spec('127.0.0.1', 9001, { maxConnections: 1 }), spec('127.0.0.2', 9001, { maxConnections: 1 })];
    const { pool, log } = await makePool({ upstreams, passiveBackoff: { baseMs: 80, maxMs: 1_000 } });
    const [epA, epB] = pool.endpoints() as [Endpoint, Endpoint];
    pool.reportConnectFailure(epB, new Error('refused'));
    const unapplied = await pool.prepare({ upstreams: upstreams.map((u) => ({ ...u, maxConnections: 5, weight: 3 })), balance: 'least_connections' });
    assert.deepEqual(pool.endpoints(), [epA, epB], 'preparing changes no member');
    assert.equal(unapplied.balancer.pick('10.0.0.1', undefined), undefined, "the plan's balancer is not fed before it is applied");
    assert.deepEqual([epA.maxConnections, epA.weight], [1, 1], "the unapplied plan's settings leaked into the running pool");
    // The running plan decides and counts: B is down, A has one slot.
    const picked = pool.pick('10.0.0.9').endpoint!;
    assert.equal(picked, epA, 'B is down in the running pool');
    pool.acquire(picked);
    assert.deepEqual(pool.pick('10.0.0.1'), { endpoint: undefined, reason: 'limit' }, "the running pool counts A's connection");
    // B's back-off still runs under the running plan.
    await within(log.next(stateChange(epB.label, 'healthy')), 3_000, 'B back-off end');
    assert.equal(pool.pick('10.0.0.1').endpoint, epB);
    // A failure reported while a plan is being prepared: the running pool's to recover from.
    const pending = pool.prepare({ upstreams, balance: 'least_connections' });
    pool.reportConnectFailure(epB, new Error('refused'));
    await pending;
    assert.equal(epB.state, 'down');
    await within(log.next(stateChange(epB.label, 'healthy')), 3_000, 'B back under the running pool');
    pool.close();
  });

  it('source_hash: a reload that only changes weights rebuilds the table', async () => {
    const upstreams = [spec('127.0.0.1', 9001), spec('127.0.0.2', 9001)];
    const { pool } = await makePool({ upstreams, balance: 'source_hash' });
    pool.apply(await pool.prepare({ upstreams: [upstreams[0]!, { ...upstreams[1]!, weight: 9 }], balance: 'source_hash' }));
    let second = 0;
    for (let i = 0; i < 2000; i++) if (pool.pick(`10.${i >> 8}.${i & 255}.1`).endpoint!.host === '127.0.0.2') second++;
    // 9 of 10 shares: ~1800 of 2000; the old 1:1 table would give ~1000.
    assert.ok(second > 1600, `weight 9 got ${second} of 2000 clients`);
    pool.close();
  });

  it('close() leaves no timer or socket behind', async () => {
    const handles = trackHandles();
    // Answers nothing: checks with `expect` stay in flight until their timeout.
    const silent = await startServer(() => {});
    const closed = await startServer(endAtOnce);
    await closed.close();
    handles.start();
    const { pool } = await makePool({
      upstreams: [spec('127.0.0.1', silent.port), spec('127.0.0.1', closed.port), spec('svc.test', 9001)],
      healthCheck: { ...fastChecks, intervalMs: 10, timeoutMs: 10_000, expect: Buffer.from('x') },
      lookup: async () => [{ address: '127.0.0.9', family: 4 }],
      resolveIntervalMs: 10,
    });
    await within(new Promise((resolve) => silent.server.once('connection', resolve)), 3_000, 'a check in flight');
    await pause(30);
    assert.ok(handles.live().includes('Timeout'));
    pool.close();
    await silent.close();
    // Handles are destroyed asynchronously; give them a few turns of the loop.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    handles.stop();
    assert.deepEqual(handles.live(), []);
  });
});

/** The back-off `report` sets is exactly `ms` from the moment it ran (bracketed by the clock, no tolerance). */
function assertRetryIn(report: () => void, endpoint: Endpoint, ms: number): void {
  const before = Date.now();
  report();
  const after = Date.now();
  assert.ok(endpoint.retryAt >= before + ms && endpoint.retryAt <= after + ms, `retry at +${endpoint.retryAt - before} ms, expected +${ms}`);
}
