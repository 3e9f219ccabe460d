/**
 * Admission control end to end (issue 4): access lists, schedules, rate and connection
 * limits, the on_limit queue, through the real proxy with clients bound to 127.0.0.x and
 * ::1. Every refusal is checked three ways: the client gets not a byte, the access log
 * names the reason, and the upstream sees no connection. The last test storms the proxy
 * with connections ending every way and checks that every counter comes back to zero.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';
import { describe, it } from 'node:test';
import type { ConnectionLimits } from '../../src/admission/limits.js';
import {
  assertClosedWithoutAByte,
  endHeld,
  holdConnection,
  otherDays,
  startWhoami,
  wallClock,
  whoAnswers,
  windowFromNow,
  zoneWhereHourIs,
} from '../helpers/integration.js';
import { IPV6_LOOPBACK, requires } from '../helpers/requirements.js';
import { oneListener, startProxy, type LogLine, type TestProxy } from '../helpers/proxy.js';
import { refusedPort, startServer, type TestServer } from '../helpers/servers.js';
import { request } from '../admin/http-client.js';
import { makeTestCertificates } from '../protocol/test-certs.js';
import { until } from '../helpers/wait.js';
import { closed, readToEnd, sha256, connect } from '../helpers/sockets.js';

/** A proxy in front of one whoami upstream ("a"); `listen` overrides the listener address. */
async function guarded(keys: Record<string, unknown>, options: { hold?: boolean; listen?: string } = {}): Promise<{ proxy: TestProxy; upstream: TestServer }> {
  const upstream = await startWhoami('a', { hold: options.hold ?? false });
  const config = oneListener([upstream.address], keys);
  if (options.listen) (config.listeners as Record<string, unknown>[])[0]!.listen = options.listen;
  return { proxy: await startProxy(config), upstream };
}

async function teardown(proxy: TestProxy, ...servers: TestServer[]): Promise<void> {
  await proxy.stop();
  for (const server of servers) await server.close();
}

/**
 * Connects from `source` and expects a refusal for `reason`: no byte for the client, a
 * reject line naming the client, and no new connection at the upstream.
 */
async function assertRefused(proxy: TestProxy, upstream: TestServer, reason: string, source?: string, host = '127.0.0.1'): Promise<LogLine> {
  const upstreamBefore = upstream.accepted.length;
  const client = await connect(proxy.port, host, source);
  const label = formatClient(client);
  client.write('let me in');
  await assertClosedWithoutAByte(client, `client from ${source ?? host}`);
  const line = await proxy.waitForLog((l) => l.event === 'reject' && l.client === label);
  assert.equal(line.reason, reason, `refused for ${String(line.reason)}, expected ${reason}`);
  assert.equal(line.upstream, null);
  assert.equal(upstream.accepted.length, upstreamBefore, 'the upstream saw a connection for a refused client');
  return line;
}

/** The client as the proxy's log writes it: "ip:port", "[v6]:port", IPv4-mapped shown as IPv4. */
function formatClient(socket: Socket): string {
  const address = socket.localAddress!.replace(/^::ffff:(?=\d+\.)/, '');
  return address.includes(':') ? `[${address}]:${socket.localPort}` : `${address}:${socket.localPort}`;
}

function listenerLimits(proxy: TestProxy): ConnectionLimits {
  // The runtime keeps its listener contexts private; the limits are what this test is about.
  return proxy.runtime['running'].get('test')!.state.limits;
}

function queueLength(proxy: TestProxy): number {
  return proxy.runtime.stats().listeners[0]!.queue_length;
}

describe('access lists', { timeout: 30_000 }, () => {
  it('allow: only listed addresses get through; others are refused with acl', async () => {
    const { proxy, upstream } = await guarded({ access: { allow: ['127.0.0.5', '127.0.3.0/24'] } });
    try {
      assert.equal(await whoAnswers(proxy.port, '127.0.0.5'), 'a');
      assert.equal(await whoAnswers(proxy.port, '127.0.3.77'), 'a');
      await assertRefused(proxy, upstream, 'acl', '127.0.0.6');
      await assertRefused(proxy, upstream, 'acl', '127.0.4.1');
      assert.equal(proxy.runtime.stats().listeners[0]!.rejections.acl, 2);
    } finally {
      await teardown(proxy, upstream);
    }
  });

  it('deny wins over allow', async () => {
    const { proxy, upstream } = await guarded({ access: { allow: ['127.0.0.0/24'], deny: ['127.0.0.7/32', '127.0.0.128/25'] } });
    try {
      await assertRefused(proxy, upstream, 'acl', '127.0.0.7');
      await assertRefused(proxy, upstream, 'acl', '127.0.0.200');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.8'), 'a');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.127'), 'a');
      await assertRefused(proxy, upstream, 'acl', '127.0.1.1'); // not in allow
    } finally {
      await teardown(proxy, upstream);
    }
  });

  it('deny alone: everyone else gets through', async () => {
    const { proxy, upstream } = await guarded({ access: { deny: ['127.0.0.9'] } });
    try {
      await assertRefused(proxy, upstream, 'acl', '127.0.0.9');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.10'), 'a');
    } finally {
      await teardown(proxy, upstream);
    }
  });

  it('IPv6: ::1 is matched by IPv6 rules on a [::1] listener', async (t) => {
    if (!(await requires(t, IPV6_LOOPBACK))) return;
    const allowed = await guarded({ access: { allow: ['::1/128'] } }, { listen: '[::1]:0' });
    const denied = await guarded({ access: { allow: ['::/0'], deny: ['::1'] } }, { listen: '[::1]:0' });
    try {
      assert.equal(await whoAnswers(allowed.proxy.port, undefined, '::1'), 'a');
      const line = await assertRefused(denied.proxy, denied.upstream, 'acl', undefined, '::1');
      assert.match(String(line.client), /^\[::1\]:\d+$/);
    } finally {
      await teardown(allowed.proxy, allowed.upstream);
      await teardown(denied.proxy, denied.upstream);
    }
  });

  it('a [::] listener matches IPv4 clients (seen as ::ffff:a.b.c.d) against IPv4 rules', async (t) => {
    if (!(await requires(t, IPV6_LOOPBACK))) return;
    const { proxy, upstream } = await guarded({ access: { allow: ['127.0.0.0/8', '::1'], deny: ['127.0.0.11/32'] } }, { listen: '[::]:0' });
    const v4only = await guarded({ access: { allow: ['127.0.0.0/8'] } }, { listen: '[::]:0' });
    try {
      assert.equal(await whoAnswers(proxy.port, '127.0.0.12'), 'a');
      const line = await assertRefused(proxy, upstream, 'acl', '127.0.0.11');
      assert.match(String(line.client), /^127\.0\.0\.11:\d+$/, 'the log shows the IPv4 client, not ::ffff:');
      assert.equal(await whoAnswers(proxy.port, undefined, '::1'), 'a');
      // An IPv4-only allow list does not let ::1 in.
      await assertRefused(v4only.proxy, v4only.upstream, 'acl', undefined, '::1');
      assert.equal(await whoAnswers(v4only.proxy.port, '127.0.0.12'), 'a');
    } finally {
      await teardown(proxy, upstream);
      await teardown(v4only.proxy, v4only.upstream);
    }
  });
});

describe('schedule (windows computed from the current time)', { timeout: 30_000 }, () => {
  /** Proxy with a schedule of the given windows; checks admission or a schedule refusal. */
  async function expectSchedule(timezone: string, windows: { days: string[]; from: string; to: string }[], open: boolean): Promise<void> {
    const { proxy, upstream } = await guarded({
      access: { schedule: { timezone, windows: windows.map(({ days, from, to }) => ({ days, from, to })) } },
    });
    try {
      const what = `${timezone} ${JSON.stringify(windows)} at ${new Date().toISOString()}`;
      if (open) assert.equal(await whoAnswers(proxy.port), 'a', `closed: ${what}`);
      else await assertRefused(proxy, upstream, 'schedule');
    } finally {
      await teardown(proxy, upstream);
    }
  }

  it('a window including now admits; windows before or after now refuse', async () => {
    await expectSchedule('UTC', [windowFromNow('UTC', -30, 60)], true);
    await expectSchedule('UTC', [windowFromNow('UTC', 30, 60)], false);
    await expectSchedule('UTC', [windowFromNow('UTC', -90, 60)], false);
    // Two windows, now in the second.
    await expectSchedule('UTC', [windowFromNow('UTC', -180, 60), windowFromNow('UTC', -10, 20)], true);
  });

  it('the whole day, but on other weekdays only, refuses', async () => {
    const today = wallClock('UTC').weekday;
    await expectSchedule('UTC', [{ days: otherDays(today), from: '00:00', to: '24:00' }], false);
    await expectSchedule('UTC', [{ days: [today], from: '00:00', to: '24:00' }], true);
  });

  it('crossing midnight: open after midnight on the day it started, and before midnight', async () => {
    // A zone in which it is now 01:xx: a window from 23:xx yesterday to 03:xx today.
    const afterMidnight = zoneWhereHourIs(1);
    const spanning = windowFromNow(afterMidnight, -120, 240);
    assert.ok(spanning.crossesMidnight, JSON.stringify(spanning));
    await expectSchedule(afterMidnight, [spanning], true);
    const today = wallClock(afterMidnight).weekday;
    // The same hours listed on today: that window starts tonight, so it is closed now.
    await expectSchedule(afterMidnight, [{ days: [today], from: '23:00', to: '03:00' }], false);
    // Ended just after midnight, before now.
    const ended = windowFromNow(afterMidnight, -300, 240);
    assert.ok(ended.crossesMidnight, JSON.stringify(ended));
    await expectSchedule(afterMidnight, [ended], false);
    // A zone in which it is now 22:xx: a window from 21:xx to 01:xx tomorrow.
    const beforeMidnight = zoneWhereHourIs(22);
    const evening = windowFromNow(beforeMidnight, -60, 240);
    assert.ok(evening.crossesMidnight, JSON.stringify(evening));
    await expectSchedule(beforeMidnight, [evening], true);
  });

  it('non-UTC zones: windows are local wall time (DST zone and a +05:45 zone)', async () => {
    await expectSchedule('America/New_York', [windowFromNow('America/New_York', -20, 40)], true);
    await expectSchedule('America/New_York', [windowFromNow('America/New_York', 20, 40)], false);
    await expectSchedule('Asia/Kathmandu', [windowFromNow('Asia/Kathmandu', -10, 20)], true);
    // The window around now in UTC wall time, read in Kathmandu (5 h 45 min ahead): closed.
    await expectSchedule('Asia/Kathmandu', [windowFromNow('UTC', -10, 20)], false);
  });

  it('enforce: close cuts an established connection at the window end with reason schedule; enforce: none keeps it', async () => {
    // The schedule reads an injected clock, frozen 300 ms before a window's end: every
    // connection is admitted inside the window, and its window ends 300 ms after it started.
    const windowEndsAt = Date.UTC(2026, 0, 5, 10, 0); // Monday 10:00 UTC
    let clock = windowEndsAt - 300;
    const now = (): number => clock;
    const keys = (enforce: string) => ({ access: { schedule: { timezone: 'UTC', enforce, windows: [{ days: ['mon'], from: '09:00', to: '10:00' }] } } });
    const start = async (enforce: string) => {
      const upstream = await startWhoami('a', { hold: true });
      return { proxy: await startProxy(oneListener([upstream.address], keys(enforce)), { now }), upstream };
    };
    const closing = await start('close');
    const keeping = await start('none');
    try {
      const cut = await holdConnection(closing.proxy.port);
      const cutLabel = formatClient(cut.socket);
      const kept = await holdConnection(keeping.proxy.port);
      const gone = closed(cut.socket);
      const line = await closing.proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'schedule');
      assert.equal(line.client, cutLabel);
      assert.ok(Number(line.duration_ms) >= 299, `closed after ${String(line.duration_ms)} ms, before the window end`);
      await gone;
      assert.equal(closing.proxy.runtime.stats().listeners[0]!.active, 0);
      // The unenforced listener's connection outlives the same window end, still carrying bytes.
      kept.socket.write('still here');
      await once(keeping.upstream.accepted[0]!, 'data');
      assert.equal(keeping.proxy.accessLog().length, 0);
      // Once the clock is past the end, new connections are refused with schedule.
      clock = windowEndsAt;
      await assertRefused(keeping.proxy, keeping.upstream, 'schedule');
      kept.socket.destroy();
    } finally {
      await teardown(closing.proxy, closing.upstream);
      await teardown(keeping.proxy, keeping.upstream);
    }
  });
});

describe('rate limit (new_connections_per_ip)', { timeout: 30_000 }, () => {
  it('refuses a source over its rate with rate_limit; other sources are unaffected', async () => {
    const { proxy, upstream } = await guarded({ new_connections_per_ip: { limit: 3, per: '1m' } });
    try {
      for (let i = 0; i < 3; i++) assert.equal(await whoAnswers(proxy.port, '127.0.0.20'), 'a');
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.20');
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.20');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.21'), 'a');
      assert.equal(upstream.accepted.length, 4);
      assert.equal(proxy.runtime.stats().listeners[0]!.rejections.rate_limit, 2);
    } finally {
      await teardown(proxy, upstream);
    }
  });

  it('tokens come back over time (token bucket)', async () => {
    // The limiter reads an injected clock: time moves only when the test moves it.
    let clock = 1_000_000;
    const upstream = await startWhoami('a');
    const proxy = await startProxy(oneListener([upstream.address], { new_connections_per_ip: { limit: 2, per: '1s' } }), { now: () => clock });
    try {
      assert.equal(await whoAnswers(proxy.port, '127.0.0.22'), 'a');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.22'), 'a');
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.22');
      clock += 499; // one token per 500 ms: not quite one yet
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.22');
      clock += 1;
      assert.equal(await whoAnswers(proxy.port, '127.0.0.22'), 'a');
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.22');
      clock += 5_000; // a long pause refills the bucket to its limit, no further
      assert.equal(await whoAnswers(proxy.port, '127.0.0.22'), 'a');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.22'), 'a');
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.22');
    } finally {
      await teardown(proxy, upstream);
    }
  });
});

describe('connection limits', { timeout: 30_000 }, () => {
  it('max_connections_per_ip: the next connection from that address is refused with limit', async () => {
    const { proxy, upstream } = await guarded({ max_connections_per_ip: 2 }, { hold: true });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 2; i++) held.push((await holdConnection(proxy.port, '127.0.0.30')).socket);
      await assertRefused(proxy, upstream, 'limit', '127.0.0.30');
      held.push((await holdConnection(proxy.port, '127.0.0.31')).socket);
      assert.equal(listenerLimits(proxy).activeFor('127.0.0.30'), 2);
      await endHeld(proxy, held.shift()!);
      held.push((await holdConnection(proxy.port, '127.0.0.30')).socket);
    } finally {
      for (const socket of held) socket.destroy();
      await teardown(proxy, upstream);
    }
  });

  it('max_connections: the listener refuses with limit when full, admits again when a slot frees', async () => {
    const { proxy, upstream } = await guarded({ max_connections: 3 }, { hold: true });
    const held: Socket[] = [];
    try {
      for (let i = 0; i < 3; i++) held.push((await holdConnection(proxy.port, `127.0.0.${40 + i}`)).socket);
      await assertRefused(proxy, upstream, 'limit', '127.0.0.43');
      assert.equal(listenerLimits(proxy).active, 3);
      assert.equal(proxy.runtime.stats().listeners[0]!.active, 3);
      await endHeld(proxy, held.shift()!);
      held.push((await holdConnection(proxy.port, '127.0.0.43')).socket);
      assert.equal(proxy.runtime.stats().listeners[0]!.rejections.limit, 1);
    } finally {
      for (const socket of held) socket.destroy();
      await teardown(proxy, upstream);
    }
  });

  it('rules apply in order: a denied client spends no rate-limit token', async () => {
    const { proxy, upstream } = await guarded({
      access: { deny: ['127.0.0.50'] },
      new_connections_per_ip: { limit: 1, per: '1m' },
    });
    try {
      await assertRefused(proxy, upstream, 'acl', '127.0.0.50');
      await assertRefused(proxy, upstream, 'acl', '127.0.0.50');
      assert.equal(await whoAnswers(proxy.port, '127.0.0.51'), 'a');
      await assertRefused(proxy, upstream, 'rate_limit', '127.0.0.51');
    } finally {
      await teardown(proxy, upstream);
    }
  });
});

describe('on_limit: queue', { timeout: 30_000 }, () => {
  /** An echo upstream that records, per connection, the first 8 bytes it received (a client label). */
  async function labelledEcho(): Promise<{ server: TestServer; order: string[] }> {
    const order: string[] = [];
    const server = await startServer((socket) => {
      let first = true;
      socket.on('data', (chunk: Buffer) => {
        if (first) order.push(chunk.subarray(0, 8).toString());
        first = false;
      });
      socket.pipe(socket);
    });
    return { server, order };
  }

  it('queued clients proceed in FIFO order, and the bytes they sent while queued arrive intact', async () => {
    const { server, order } = await labelledEcho();
    const proxy = await startProxy(oneListener([server.address], { max_connections: 1, on_limit: 'queue', queue_timeout: '10s' }));
    try {
      const first = await connect(proxy.port);
      first.write('client-0');
      await once(first, 'data');
      const payloads: Buffer[] = [];
      const replies: Promise<Buffer>[] = [];
      for (let i = 1; i <= 4; i++) {
        const client = await connect(proxy.port, '127.0.0.1', `127.0.0.${60 + i}`);
        // 256 KiB and the FIN, all while queued: the kernel holds what the proxy does not read.
        const payload = Buffer.concat([Buffer.from(`client-${i}`), randomBytes(256 * 1024)]);
        payloads.push(payload);
        replies.push(readToEnd(client));
        client.end(payload);
        await until(() => queueLength(proxy) === i, `${i} clients queued`);
      }
      assert.deepEqual(order, ['client-0'], 'a queued client reached the upstream');
      first.end();
      const received = await Promise.all(replies);
      received.forEach((reply, i) => assert.equal(sha256(reply), sha256(payloads[i]!), `client ${i + 1} got other bytes back`));
      assert.deepEqual(order, ['client-0', 'client-1', 'client-2', 'client-3', 'client-4']);
      assert.equal(queueLength(proxy), 0);
    } finally {
      await teardown(proxy, server);
    }
  });

  it('a client still queued after queue_timeout is refused with queue_timeout', async () => {
    const { proxy, upstream } = await guarded({ max_connections: 1, on_limit: 'queue', queue_timeout: '300ms' }, { hold: true });
    try {
      const held = await holdConnection(proxy.port);
      const started = Date.now();
      const line = await assertRefused(proxy, upstream, 'queue_timeout', '127.0.0.70');
      assert.ok(Date.now() - started >= 250, `refused after ${Date.now() - started} ms, before the queue timeout`);
      assert.equal(line.client?.toString().startsWith('127.0.0.70:'), true);
      assert.equal(queueLength(proxy), 0);
      await endHeld(proxy, held.socket);
    } finally {
      await teardown(proxy, upstream);
    }
  });

  it('max_queue bounds the queue: one more is refused at once with limit', async () => {
    const { proxy, upstream } = await guarded({ max_connections: 1, on_limit: 'queue', queue_timeout: '10s', max_queue: 2 }, { hold: true });
    const sockets: Socket[] = [];
    try {
      const held = await holdConnection(proxy.port);
      sockets.push(held.socket);
      const queued: Promise<{ name: string; socket: Socket }>[] = [];
      for (let i = 1; i <= 2; i++) {
        queued.push(holdConnection(proxy.port, `127.0.0.${70 + i}`));
        await until(() => queueLength(proxy) === i, `${i} queued`);
      }
      const started = Date.now();
      await assertRefused(proxy, upstream, 'limit', '127.0.0.73');
      assert.ok(Date.now() - started < 5_000, 'refused only after waiting');
      await endHeld(proxy, held.socket);
      const next = await queued[0]!;
      sockets.push(next.socket);
      assert.equal(next.name, 'a');
      await endHeld(proxy, next.socket);
      sockets.push((await queued[1]!).socket);
    } finally {
      for (const socket of sockets) socket.destroy();
      await teardown(proxy, upstream);
    }
  });

  it('a queued client that resets gives its place up: the next waiter proceeds, every count back to zero', async () => {
    const { proxy, upstream } = await guarded({ max_connections: 1, on_limit: 'queue', queue_timeout: '10s' }, { hold: true });
    const sockets: Socket[] = [];
    try {
      const held = await holdConnection(proxy.port);
      sockets.push(held.socket);
      const quitter = await connect(proxy.port, '127.0.0.1', '127.0.0.75');
      quitter.write('gone soon');
      await until(() => queueLength(proxy) === 1, 'the quitter queued');
      const waiting = holdConnection(proxy.port, '127.0.0.76');
      await until(() => queueLength(proxy) === 2, 'the second waiter queued');
      const quitterLabel = formatClient(quitter);
      quitter.resetAndDestroy();
      // Noticed while waiting (not only when its turn comes): its place is given up at once.
      await until(() => queueLength(proxy) === 1, 'the quitter to leave the queue');
      await endHeld(proxy, held.socket);
      const next = await waiting;
      sockets.push(next.socket);
      assert.equal(next.name, 'a');
      // The quitter is logged once (whatever the proxy noticed first), and holds nothing.
      await proxy.waitForLog((l) => l.client === quitterLabel);
      await endHeld(proxy, next.socket);
      const limits = listenerLimits(proxy);
      assert.equal(limits.active, 0);
      assert.equal(limits.trackedIps, 0);
      assert.equal(queueLength(proxy), 0);
      assert.equal(proxy.accessLog().filter((l) => l.client === quitterLabel).length, 1);
      assert.deepEqual(
        proxy.runtime.stats().upstreams.map((u) => u.active),
        [0],
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await teardown(proxy, upstream);
    }
  });

  it('a waiter held back by its own per-IP limit does not block other addresses', async () => {
    const { proxy, upstream } = await guarded({ max_connections_per_ip: 1, max_connections: 10, on_limit: 'queue', queue_timeout: '10s' }, { hold: true });
    const sockets: Socket[] = [];
    try {
      sockets.push((await holdConnection(proxy.port, '127.0.0.80')).socket);
      const waiting = holdConnection(proxy.port, '127.0.0.80');
      await until(() => queueLength(proxy) === 1, 'the second client of .80 queued');
      sockets.push((await holdConnection(proxy.port, '127.0.0.81')).socket);
      await endHeld(proxy, sockets.shift()!);
      sockets.push((await waiting).socket);
      assert.equal(listenerLimits(proxy).active, 2);
    } finally {
      for (const socket of sockets) socket.destroy();
      await teardown(proxy, upstream);
    }
  });
});

describe('slot counters after a storm', { timeout: 60_000 }, () => {
  it('1250 connections ending every way (closes, resets, timeouts, TLS and SNI failures, filter, admin, max_lifetime, queue, refusals, shutdown) leave every counter at zero', async () => {
    // 'Q' asks the upstream to close first; anything else is echoed.
    const upstreams = await Promise.all(
      [0, 1].map(() =>
        startServer((socket) => {
          socket.once('data', (chunk: Buffer) => {
            if (chunk[0] === 0x51) return void socket.end('bye');
            socket.write(chunk);
            socket.pipe(socket);
          });
        }),
      ),
    );
    // Every other way a connection ends, each on a listener set up for it, in the same runtime.
    const certDir = await mkdtemp(join(tmpdir(), 'tcpproxy-storm-'));
    const certs = await makeTestCertificates(certDir);
    const echo = upstreams[0]!.address;
    const nowhere = `127.0.0.1:${await refusedPort()}`;
    const limited = { max_connections: 40, max_connections_per_ip: 20 };
    const config = oneListener(
      upstreams.map((u) => u.address),
      {
        max_connections: 60,
        max_connections_per_ip: 25,
        on_limit: 'queue',
        queue_timeout: '200ms',
        max_queue: 100,
        idle_timeout: '500ms',
        access: { deny: ['127.0.0.66'] },
        new_connections_per_ip: { limit: 60, per: '1h' },
      },
    );
    (config.listeners as unknown[]).push(
      { name: 'tls', listen: '127.0.0.1:0', upstreams: [echo], tls: { cert: certs.serverCert, key: certs.serverKey }, ...limited },
      { name: 'sni', listen: '127.0.0.1:0', upstreams: [echo], routes: [{ sni: 'a.example', upstreams: [echo] }], connect_timeout: '300ms', ...limited },
      { name: 'nowhere', listen: '127.0.0.1:0', upstreams: [nowhere], connect_retries: 0, ...limited },
      { name: 'filtered', listen: '127.0.0.1:0', upstreams: [echo], filters: [{ type: 'block', match: 'BLOCK' }], ...limited },
      { name: 'lifetime', listen: '127.0.0.1:0', upstreams: [echo], max_lifetime: '300ms', ...limited },
      { name: 'tight', listen: '127.0.0.1:0', upstreams: [echo], max_connections: 1, on_limit: 'queue', max_queue: 1, queue_timeout: '200ms' },
    );
    const proxy = await startProxy({ ...config, admin: { listen: '127.0.0.1:0' } });
    const portOf = (name: string): number => proxy.runtime.listenerAddress(name)!.port;
    const adminPort = proxy.runtime.adminAddress()!.port;
    type Kind =
      | 'close'
      | 'upstream_close'
      | 'reset'
      | 'late_reset'
      | 'early_reset'
      | 'idle'
      | 'denied'
      | 'rate'
      | 'tls_ok'
      | 'tls_garbage'
      | 'sni_stall'
      | 'sni_fin'
      | 'no_upstream'
      | 'filter'
      | 'filter_pass'
      | 'lifetime'
      | 'admin';
    const plan: Kind[] = [
      ...Array<Kind>(250).fill('close'),
      ...Array<Kind>(150).fill('upstream_close'),
      ...Array<Kind>(100).fill('reset'),
      ...Array<Kind>(100).fill('late_reset'),
      ...Array<Kind>(100).fill('early_reset'),
      ...Array<Kind>(100).fill('idle'),
      ...Array<Kind>(100).fill('denied'),
      ...Array<Kind>(100).fill('rate'),
      ...Array<Kind>(20).fill('tls_ok'),
      ...Array<Kind>(30).fill('tls_garbage'),
      ...Array<Kind>(10).fill('sni_stall'),
      ...Array<Kind>(20).fill('sni_fin'),
      ...Array<Kind>(30).fill('no_upstream'),
      ...Array<Kind>(30).fill('filter'),
      ...Array<Kind>(20).fill('filter_pass'),
      ...Array<Kind>(20).fill('lifetime'),
      ...Array<Kind>(20).fill('admin'),
    ];
    // Interleave the kinds (a fixed shuffle) so that every phase of the storm sees every ending.
    let seed = 12345;
    for (let i = plan.length - 1; i > 0; i--) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const j = seed % (i + 1);
      [plan[i], plan[j]] = [plan[j]!, plan[i]!];
    }
    const source = (kind: Kind, i: number): string => (kind === 'denied' ? '127.0.0.66' : kind === 'rate' ? '127.0.0.67' : `127.0.5.${(i % 40) + 1}`);

    // Client label -> the kinds of the connections that used it (a source port can be reused).
    const kindsOf = new Map<string, Kind[]>();
    const listenerOf = (kind: Kind): string =>
      kind.startsWith('tls_')
        ? 'tls'
        : kind.startsWith('sni_')
          ? 'sni'
          : kind.startsWith('filter') || kind === 'admin'
            ? 'filtered'
            : kind === 'no_upstream'
              ? 'nowhere'
              : kind === 'lifetime'
                ? 'lifetime'
                : 'test';
    const record = (socket: Socket, kind: Kind): string => {
      const label = `${socket.localAddress}:${socket.localPort}`;
      kindsOf.set(label, [...(kindsOf.get(label) ?? []), kind]);
      return label;
    };
    const runTls = async (kind: Kind, i: number): Promise<void> => {
      const raw = net.connect({ port: portOf('tls'), host: '127.0.0.1', localAddress: source(kind, i) });
      raw.on('error', () => undefined);
      raw.once('connect', () => record(raw, kind));
      const socket = tls.connect({ socket: raw, ca: readFileSync(certs.caCert), servername: 'localhost' });
      socket.on('error', () => undefined);
      const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.once('secureConnect', () => {
        socket.once('data', () => socket.end());
        socket.write('over tls');
      });
      socket.resume();
      await gone;
    };
    const runOne = async (kind: Kind, i: number): Promise<void> => {
      if (kind === 'tls_ok') return runTls(kind, i);
      const socket = net.connect({ port: portOf(listenerOf(kind)), host: '127.0.0.1', localAddress: source(kind, i), allowHalfOpen: true });
      socket.on('error', () => undefined);
      const gone = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('end', () => socket.destroy());
      socket.once('connect', () => {
        const label = record(socket, kind);
        switch (kind) {
          case 'early_reset':
            return void socket.resetAndDestroy();
          case 'reset': // once bridged
            socket.write('r'.repeat(100));
            socket.once('data', () => socket.resetAndDestroy());
            return;
          case 'late_reset': // often while queued or while the proxy connects upstream
            socket.write('r'.repeat(100));
            setTimeout(() => socket.resetAndDestroy(), 300);
            return;
          case 'upstream_close':
            return void socket.write('Quit');
          case 'idle':
            return; // the proxy closes it after idle_timeout (or refuses it)
          case 'tls_garbage': // not TLS at all: the handshake fails
            return void socket.write('GET / HTTP/1.0\r\n\r\n');
          case 'sni_stall': // a ClientHello that never completes: connect_timeout ends the peek
            return void socket.write(PARTIAL_CLIENT_HELLO);
          case 'sni_fin': // a ClientHello cut short by a FIN
            return void socket.end(PARTIAL_CLIENT_HELLO);
          case 'no_upstream':
            return void socket.write('anyone there?');
          case 'filter':
            return void socket.write('xx BLOCK xx');
          case 'lifetime': // bridged, then held until max_lifetime
            return void socket.write('l');
          case 'admin': // bridged (on a listener without idle_timeout), then closed through DELETE /api/connections/<id>
            socket.write('a');
            socket.once('data', () => void closeByAdmin(label));
            return;
          default:
            socket.end('x'.repeat(1000));
        }
        socket.resume();
      });
      socket.resume();
      await gone;
    };
    const closeByAdmin = async (label: string): Promise<void> => {
      const listed = JSON.parse((await request(adminPort, 'GET', '/api/connections')).body) as { id: string; client: string }[];
      const id = listed.find((c) => c.client === label)?.id;
      assert.ok(id, `${label} is not listed by /api/connections`);
      assert.equal((await request(adminPort, 'DELETE', `/api/connections/${id}`)).status, 200);
    };
    /** On listener "tight" (1 slot, a queue of 1): one holds the slot, one waits out queue_timeout, one finds the queue full. */
    const tightRound = async (round: number): Promise<void> => {
      const holder = await connect(portOf('tight'), '127.0.0.1', `127.0.7.${round + 1}`);
      holder.write('hold');
      await once(holder, 'data');
      const waiter = await connect(portOf('tight'), '127.0.0.1', `127.0.8.${round + 1}`);
      await until(() => proxy.runtime.stats().listeners.find((l) => l.name === 'tight')!.queue_length === 1, 'a waiter in the tight queue');
      const overflow = await connect(portOf('tight'), '127.0.0.1', `127.0.9.${round + 1}`);
      await assertClosedWithoutAByte(overflow, 'a client over max_queue');
      await assertClosedWithoutAByte(waiter, 'a client past queue_timeout');
      await endHeld(proxy, holder);
    };
    const TIGHT_ROUNDS = 5;

    try {
      // At most 200 clients in flight (the accept backlog stays comfortable), and the
      // "tight" rounds one after another alongside.
      let next = 0;
      await Promise.all([
        ...Array.from({ length: 200 }, async () => {
          while (next < plan.length) {
            const i = next++;
            await runOne(plan[i]!, i);
          }
        }),
        (async () => {
          for (let round = 0; round < TIGHT_ROUNDS; round++) await tightRound(round);
        })(),
      ]);
      // One access-log line per connection, however it ended. A client reset before the
      // proxy's accept() (under the storm that happens, by hundreds of ms) is logged with
      // client "unknown": only resets may be among those.
      const resets = plan.filter((kind) => kind === 'early_reset' || kind === 'late_reset').length;
      const expectedLines = plan.length + 3 * TIGHT_ROUNDS;
      await until(() => proxy.accessLog().length >= expectedLines, 'an access-log line for every connection', 20_000).catch(() =>
        assert.fail(`${expectedLines - proxy.accessLog().length} connections without an access-log line`),
      );
      const linesOf = new Map<unknown, number>();
      for (const line of proxy.accessLog()) linesOf.set(line.client, (linesOf.get(line.client) ?? 0) + 1);
      const unknown = linesOf.get('unknown') ?? 0;
      assert.ok(unknown <= resets, `${unknown} clients logged as unknown, more than the ${resets} that reset`);
      for (const [client, kinds] of kindsOf) {
        const count = linesOf.get(client) ?? 0;
        const mayBeUnknown = kinds.filter((kind) => kind === 'early_reset' || kind === 'late_reset').length;
        assert.ok(count <= kinds.length && count >= kinds.length - mayBeUnknown, `${client} (${kinds.join(', ')}) has ${count} access-log lines`);
      }
      const limits = listenerLimits(proxy);
      await assertAllZero(proxy);
      assert.equal(proxy.logs.filter((l) => l.event === 'upstream_release_unbalanced').length, 0);
      const log = proxy.accessLog();
      assert.equal(log.length, expectedLines, 'more access-log lines than connections');
      const reasons = tally(log.map((l) => `${String(l.event)}:${String(l.reason)}`));
      // Every kind of ending happened.
      for (const expected of [
        'reject:acl',
        'reject:rate_limit',
        'reject:tls',
        'reject:no_upstream',
        'reject:queue_timeout',
        'reject:limit',
        'close:client_closed',
        'close:upstream_closed',
        'close:error',
        'close:idle_timeout',
        'close:filter',
        'close:max_lifetime',
        'close:admin',
      ]) {
        assert.ok((reasons[expected] ?? 0) > 0, `no ${expected} in ${JSON.stringify(reasons)}`);
      }
      assert.equal(reasons['reject:acl'], 100);
      assert.equal(reasons['reject:rate_limit'], 40);
      // The endings the storm cannot blur, listener by listener.
      const on = (listener: string) => tally(log.filter((l) => l.listener === listener).map((l) => `${String(l.event)}:${String(l.reason)}`));
      assert.deepEqual(on('tls'), { 'close:client_closed': 20, 'reject:tls': 30 });
      assert.deepEqual(on('sni'), { 'reject:tls': 30 });
      assert.deepEqual(on('nowhere'), { 'reject:no_upstream': 30 });
      assert.deepEqual(on('filtered'), { 'close:filter': 30, 'close:client_closed': 20, 'close:admin': 20 });
      assert.deepEqual(on('lifetime'), { 'close:max_lifetime': 20 });
      assert.deepEqual(on('tight'), { 'close:client_closed': TIGHT_ROUNDS, 'reject:limit': TIGHT_ROUNDS, 'reject:queue_timeout': TIGHT_ROUNDS });
      // The proxy still works, with every slot free: 60 concurrent clients fit at once.
      const clients = await Promise.all(Array.from({ length: 60 }, (_, i) => holdOpenEcho(proxy.port, `127.0.6.${(i % 3) + 1}`)));
      assert.equal(limits.active, 60);
      assert.equal(queueLength(proxy), 0);
      // Shutdown ends what is still open: these 60 and a few on the other listeners.
      const others = await Promise.all(['filtered', 'lifetime', 'sni'].map((name, i) => holdOpenEcho(portOf(name), `127.0.6.${10 + i}`)));
      await proxy.stop();
      for (const client of [...clients, ...others]) client.destroy();
      const shutdown = proxy.accessLog().filter((l) => l.reason === 'shutdown');
      assert.equal(shutdown.length, 63, 'every connection open at shutdown is logged with reason shutdown');
      await assertAllZero(proxy);
    } finally {
      await proxy.stop();
      for (const upstream of upstreams) await upstream.close();
      await rm(certDir, { recursive: true, force: true });
    }
  });
});

/** A ClientHello's record header and the start of its body: never completed. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c, 0x03, 0x03]);

/** Every listener of the proxy holds nothing: no connection, no slot, no waiter, no upstream count. */
async function assertAllZero(proxy: TestProxy): Promise<void> {
  await until(() => proxy.runtime.stats().listeners.every((l) => l.active === 0), 'stats active 0 on every listener');
  const stats = proxy.runtime.stats();
  for (const listener of stats.listeners) assert.equal(listener.queue_length, 0, `${listener.name}: queue length`);
  for (const [name, { state }] of proxy.runtime['running']) {
    assert.equal(state.limits.active, 0, `${name}: ConnectionLimits.active drifted`);
    assert.equal(state.limits.trackedIps, 0, `${name}: per-IP counts left behind`);
    assert.equal(state.connections.size, 0, `${name}: bridges left listed`);
  }
  assert.deepEqual(
    stats.upstreams.filter((u) => u.active !== 0),
    [],
    'upstream active counts drifted',
  );
  assert.deepEqual(proxy.runtime.connections(), []);
}

describe('connections gone before the proxy accepted them', { timeout: 30_000 }, () => {
  it('a client that resets before accept() is still logged (as client "unknown")', async () => {
    const { proxy, upstream } = await guarded({});
    const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-early-reset-'));
    const done = join(dir, 'done');
    try {
      // The clients run in another process, while this one (the proxy's) is kept busy: their
      // connections complete in the kernel's accept queue and are reset there, all before
      // the proxy's accept() runs. A reset client has no peer address any more.
      const clients = spawn(
        'python3',
        [
          '-c',
          [
            'import socket, struct, sys',
            'port, done = int(sys.argv[1]), sys.argv[2]',
            'for _ in range(50):',
            '    s = socket.create_connection(("127.0.0.1", port))',
            '    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))',
            '    s.close()  # linger 0: a reset',
            'open(done, "w").close()',
          ].join('\n'),
          String(proxy.port),
          done,
        ],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      const deadline = Date.now() + 10_000;
      while (!existsSync(done) && Date.now() < deadline) {
        // Busy on purpose: the proxy's event loop must not run until every client has reset.
      }
      assert.ok(existsSync(done), 'the clients did not finish within 10 s');
      await once(clients, 'exit');
      await until(() => proxy.accessLog().length === 50, 'an access-log line for each of 50 reset clients', 5_000);
      const lines = proxy.accessLog();
      assert.deepEqual(tally(lines.map((l) => `${String(l.event)}:${String(l.reason)}:${String(l.client)}`)), { 'close:error:unknown': 50 });
      assert.equal(upstream.accepted.length, 0, 'a reset client reached the upstream');
    } finally {
      await teardown(proxy, upstream);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A connection through the proxy to an echo upstream, open once a byte went round trip. */
async function holdOpenEcho(port: number, localAddress: string): Promise<Socket> {
  const socket = await connect(port, '127.0.0.1', localAddress);
  socket.write('x');
  await once(socket, 'data');
  return socket;
}

function tally(items: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;
  return counts;
}
