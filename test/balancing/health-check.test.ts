import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { Endpoint } from '../../src/balancing/endpoint.js';
import { HealthCheck, type HealthCheckOptions } from '../../src/balancing/health-check.js';
import { endAtOnce, startServer, type TestServer } from '../helpers/servers.js';
import { pause, within } from '../helpers/wait.js';

interface Verdict {
  reachable: boolean;
  detail: string;
}

/** Runs a check against `port`, applying verdicts to the endpoint as the pool does. */
function watch(port: number, options: Partial<HealthCheckOptions>, random?: () => number) {
  const endpoint = new Endpoint('127.0.0.1', port, { upstream: `127.0.0.1:${port}`, weight: 1 });
  const verdicts: Verdict[] = [];
  let notify: (() => void) | undefined;
  const check = new HealthCheck(
    endpoint,
    { intervalMs: 20, timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 1, ...options },
    (e, reachable, detail) => {
      e.reachable = reachable;
      verdicts.push({ reachable, detail });
      notify?.();
    },
    random,
  );
  const nextVerdict = (): Promise<Verdict> =>
    new Promise((resolve) => {
      const seen = verdicts.length;
      notify = () => {
        if (verdicts.length > seen) resolve(verdicts[seen]!);
      };
    });
  return { endpoint, check, verdicts, nextVerdict };
}

async function closedPort(): Promise<number> {
  const server = await startServer(endAtOnce);
  await server.close();
  return server.port;
}

describe('health check', { timeout: 10_000 }, () => {
  it('takes an endpoint out after unhealthy_threshold failures in a row, once', async () => {
    const port = await closedPort();
    const { check, verdicts, nextVerdict, endpoint } = watch(port, { unhealthyThreshold: 3 });
    const started = Date.now();
    const verdict = nextVerdict();
    check.start();
    assert.deepEqual(await within(verdict, 3_000, 'a verdict'), { reachable: false, detail: 'ECONNREFUSED' });
    assert.ok(Date.now() - started >= 2 * 20, 'three checks, one interval apart');
    assert.equal(endpoint.reachable, false);
    // More failures change nothing.
    const server = await startServer(endAtOnce, '127.0.0.1', { port });
    const back = nextVerdict();
    assert.deepEqual(await within(back, 3_000, 'a verdict'), { reachable: true, detail: 'passed 1 in a row' });
    check.stop();
    assert.equal(verdicts.length, 2);
    await server.close();
  });

  it('brings an endpoint back only after healthy_threshold passes in a row', async () => {
    const server = await startServer(endAtOnce);
    const { check, endpoint, nextVerdict } = watch(server.port, { healthyThreshold: 3 });
    endpoint.reachable = false;
    const verdict = nextVerdict();
    check.start();
    assert.deepEqual(await within(verdict, 3_000, 'a verdict'), { reachable: true, detail: 'passed 3 in a row' });
    assert.equal(server.accepted.length, 3);
    check.stop();
    await server.close();
  });

  it('starts at a random point of the first interval (jitter)', async () => {
    // Two checks started together, drawing 0.1 and 0.9 of a 400 ms interval: which comes
    // first is the assertion (an order, not a duration); the later one not before its draw.
    const early = await startServer(endAtOnce);
    const late = await startServer(endAtOnce);
    const first = watch(early.port, { intervalMs: 400 }, () => 0.1);
    const second = watch(late.port, { intervalMs: 400 }, () => 0.9);
    const order: string[] = [];
    const earlyCheck = once(early.server, 'connection').then(() => order.push('early'));
    const lateCheck = once(late.server, 'connection').then(() => order.push('late'));
    const started = Date.now();
    second.check.start();
    first.check.start();
    await within(Promise.all([earlyCheck, lateCheck]), 3_000, 'both first checks');
    const delay = Date.now() - started;
    first.check.stop();
    second.check.stop();
    assert.deepEqual(order, ['early', 'late']);
    assert.ok(delay >= 355, `the 0.9 draw checked after ${delay} ms`);
    await early.close();
    await late.close();
  });

  it('never overlaps checks of one endpoint, even when a check outlasts the interval', async () => {
    let accepted = 0;
    // Accepts and never answers: each check runs into its timeout (60 ms, interval 10 ms).
    const server = await startServer(() => accepted++);
    const { check, nextVerdict } = watch(server.port, { intervalMs: 10, timeoutMs: 60, expect: Buffer.from('x'), unhealthyThreshold: 3 });
    const verdict = nextVerdict();
    const started = performance.now();
    check.start();
    assert.deepEqual(await within(verdict, 3_000, 'a verdict'), { reachable: false, detail: 'timeout' });
    const elapsed = performance.now() - started;
    check.stop();
    // Checks every 10 ms that overlapped would have opened ~9 connections by the third
    // timeout; one after the other, exactly three, and three whole timeouts in sequence (a
    // timer never fires early, give or take the event loop's cached clock: a lower bound,
    // not a race on how fast accepts are seen).
    assert.equal(accepted, 3);
    assert.ok(elapsed >= 3 * 60 - 5, `three 60 ms timeouts in ${elapsed} ms`);
    await server.close();
  });

  it('passes when the reply contains the expected bytes, after preamble and send', async () => {
    const received: Buffer[] = [];
    const server = await startServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        if (Buffer.concat(received).toString().endsWith('PING\r\n')) socket.write('hello +PONG\r\n');
      });
    });
    const { check, endpoint, nextVerdict } = watch(server.port, {
      preamble: () => Buffer.from('PROXY LOCAL\r\n'),
      send: Buffer.from('PING\r\n'),
      expect: Buffer.from('+PONG'),
    });
    endpoint.reachable = false;
    const verdict = nextVerdict();
    check.start();
    assert.equal((await within(verdict, 3_000, 'a verdict')).reachable, true);
    check.stop();
    assert.equal(Buffer.concat(received).toString(), 'PROXY LOCAL\r\nPING\r\n');
    await server.close();
  });

  it('fails on a reply that does not match a RegExp, and on a close without reply', async () => {
    const wrong = await startServer((socket) => socket.end('-ERR not ready\r\n'));
    const first = watch(wrong.port, { expect: /^\+OK/ });
    let verdict = first.nextVerdict();
    first.check.start();
    assert.deepEqual(await within(verdict, 3_000, 'a verdict'), { reachable: false, detail: 'unexpected reply' });
    first.check.stop();

    const silent = await startServer((socket) => socket.end());
    const second = watch(silent.port, { expect: /^\+OK/ });
    verdict = second.nextVerdict();
    second.check.start();
    assert.deepEqual(await within(verdict, 3_000, 'a verdict'), { reachable: false, detail: 'closed without reply' });
    second.check.stop();
    await Promise.all([wrong.close(), silent.close()]);
  });

  it('matches a RegExp with the g flag on every check, not only the first', async () => {
    const server = await startServer((socket) => socket.end('+OK\r\n'));
    const { check, endpoint, nextVerdict } = watch(server.port, { expect: /\+OK/g, healthyThreshold: 3 });
    endpoint.reachable = false;
    const verdict = nextVerdict();
    check.start();
    assert.equal((await within(verdict, 3_000, 'a verdict')).reachable, true);
    check.stop();
    await server.close();
  });

  it('stop() ends the schedule and aborts a check in flight', async () => {
    // Not half-open: the accepted socket closes as soon as the check's socket goes away.
    const server: TestServer = await startServer(() => {}, '127.0.0.1', { allowHalfOpen: false });
    const { check, verdicts } = watch(server.port, { intervalMs: 10, timeoutMs: 5_000, expect: Buffer.from('x') }, () => 0);
    check.start();
    const [socket] = (await within(once(server.server, 'connection'), 3_000, 'a check')) as [Socket];
    check.stop();
    await within(once(socket, 'close'), 3_000, 'the check socket to close'); // the check's socket was destroyed, not left to time out
    await pause(60);
    assert.equal(server.accepted.length, 1);
    assert.equal(verdicts.length, 0);
    await server.close();
  });
});
