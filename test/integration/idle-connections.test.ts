/**
 * Idle and stalled peers at scale (issue 12), through bin/tcpproxy as a process of its own,
 * to an upstream in another process: each holds one end of every connection, and a proxied
 * connection costs the proxy two descriptors. Measured on the proxy process (/proc/<pid>):
 * every connection is bridged (the active gauge reaches the count), its resident memory per
 * connection stays under a bound, a fresh client is served meanwhile, and once the clients
 * are gone every gauge and descriptor is back to its baseline.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { startEchoProcess, type EchoProcess } from '../helpers/echo-process.js';
import { ConfigFile, descriptorHardLimit, openDescriptors, roundTrip, rssBytes, spawnProxy, type ProxyProcess, type Stats } from '../helpers/ops.js';
import { makeTestCertificates, type TestCertificates } from '../protocol/test-certs.js';
import { eventually } from '../helpers/wait.js';

/** The figure. */
const WANTED = 10_000;
/** The proxy's own descriptors besides its connections: runtime, stdio, listeners, admin clients. */
const RESERVE = 200;
/**
 * The proxy needs two descriptors per connection, and nothing can raise the hard limit it
 * inherits without privileges (CAP_SYS_RESOURCE): under a hard limit of 20,000 (this CI
 * machine's) that is 9,900; with a higher limit, the full 10,000.
 */
const IDLE = Math.min(WANTED, Math.floor((descriptorHardLimit() - RESERVE) / 2));
/**
 * Connects in flight at once, and the most connections the proxy may have left unaccepted:
 * its accept queue holds 511 (Node's default backlog). A handshake completed into a full
 * queue is dropped by the kernel while the client believes it connected; an idle client
 * sends nothing that would retry it, only the kernel's SYN-ACK retransmits (1, 2, 4 ... s)
 * do. That, not the proxy, left connections unbridged when 4,000 were opened 500 at a time in
 * one process: ~3,000 accept-queue overflows (the kernel's ListenOverflows), all bridged only
 * once the retransmits got through.
 */
const IN_FLIGHT = 200;
/** Resident memory allowed per idle connection above the proxy's baseline (measured: 14.2-14.7 KiB alone, 20.3 during the full suite). */
const IDLE_RSS_BOUND = 40 * 1024;
/** Clients that start a TLS handshake and never finish it. */
const STALLED = 1_000;
/** Resident memory allowed per stalled handshake (measured: ~53 KiB with TLS termination, OpenSSL's state and the TLSSocket). */
const STALLED_RSS_BOUND = 128 * 1024;

/** Waits until the proxy's active gauge (its one listener) satisfies `done`; bounded. */
async function activeReaches(proxy: ProxyProcess, done: (active: number) => boolean, what: string, timeoutMs = 30_000): Promise<number> {
  let last = -1;
  try {
    return await eventually(
      async () => {
        last = (await proxy.admin!.json<Stats>('/api/stats')).listeners[0]!.active;
        return done(last) ? last : undefined;
      },
      what,
      timeoutMs,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message} (active: ${last})`);
  }
}

/** Waits until the proxy holds no more descriptors than at `baseline`; bounded. */
async function descriptorsBackTo(pid: number, baseline: number): Promise<void> {
  let now = openDescriptors(pid);
  try {
    await eventually(async () => ((now = openDescriptors(pid)) <= baseline ? true : undefined), `the proxy's descriptors back to ${baseline}`, 20_000);
  } catch (error) {
    throw new Error(`${(error as Error).message} (now ${now})`);
  }
}

function idleClient(port: number): Promise<Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  return once(socket, 'connect').then(() => socket);
}

/**
 * The kernel's count of completed handshakes dropped because an accept queue was full (for
 * every socket of this network namespace): shown, to tell a dropped handshake from a proxy fault.
 */
function listenOverflows(): number {
  const [names, values] = readFileSync('/proc/net/netstat', 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('TcpExt:'))
    .map((line) => line.split(/\s+/));
  return Number(values![names!.indexOf('ListenOverflows')]);
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

/**
 * A proxy process of its own for each test (a baseline RSS taken after another test's peak
 * would hide growth), warmed up: the bridge, the TLS context and the access log are loaded
 * by one round trip before any baseline is taken.
 */
async function startWarmProxy(listener: Record<string, unknown>): Promise<{ proxy: ProxyProcess; config: ConfigFile }> {
  const config = await ConfigFile.create({ admin: { listen: '127.0.0.1:0' }, listeners: [{ name: 'main', listen: '127.0.0.1:0', ...listener }] });
  const proxy = await spawnProxy(config, { admin: true });
  await servedRoundTrip(proxy.port, Boolean(listener.tls), 'warm up');
  await activeReaches(proxy, (active) => active === 0, 'the warm-up connection closed');
  return { proxy, config };
}

/** One round trip through the proxy: over TLS to a TLS-terminating listener, else in plain (SNI routing's default route too). */
async function servedRoundTrip(port: number, overTls: boolean, payload: string): Promise<void> {
  const client = overTls ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect({ port, host: '127.0.0.1' });
  client.on('error', () => undefined);
  await once(client, overTls ? 'secureConnect' : 'connect');
  await roundTrip(client, payload);
  client.destroy();
}

describe('idle and stalled connections at scale, through a proxy process', { timeout: 120_000 }, () => {
  let dir: string;
  let certs: TestCertificates;
  let echo: EchoProcess;
  const started: { proxy: ProxyProcess; config: ConfigFile }[] = [];
  const startProxy = async (listener: Record<string, unknown>): Promise<ProxyProcess> => {
    const one = await startWarmProxy({ upstreams: [echo.address], ...listener });
    started.push(one);
    return one.proxy;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tcpproxy-idle-'));
    certs = await makeTestCertificates(dir);
    echo = await startEchoProcess();
  });
  after(async () => {
    for (const { proxy, config } of started) {
      await proxy.kill();
      await config.remove();
    }
    await echo?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it(`${IDLE} idle connections: all bridged, memory per connection bounded, others served, all released`, async (t) => {
    const proxy = await startProxy({});
    const pid = proxy.child.pid!;
    const baselineRss = rssBytes(pid);
    const baselineFds = openDescriptors(pid);
    const overflowsBefore = listenOverflows();
    const clients: Socket[] = [];
    try {
      const started = Date.now();
      while (clients.length < IDLE) {
        clients.push(...(await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, IDLE - clients.length) }, () => idleClient(proxy.port)))));
        // Pace: the proxy's accept queue never holds more than two batches.
        await activeReaches(proxy, (active) => active >= clients.length - IN_FLIGHT, `the proxy keeping up with ${clients.length} clients`);
      }
      await activeReaches(proxy, (active) => active === IDLE, `${IDLE} connections bridged`);
      const bridgedMs = Date.now() - started;
      await eventually(async () => ((await echo.connections()) === IDLE ? true : undefined), `the upstream holding ${IDLE} connections`);

      const perConnection = (rssBytes(pid) - baselineRss) / IDLE;
      t.diagnostic(
        `${IDLE} idle connections bridged in ${bridgedMs} ms (accept-queue overflows meanwhile: ${listenOverflows() - overflowsBefore}); ` +
          `proxy RSS ${kib(baselineRss)} -> ${kib(rssBytes(pid))}: ${kib(perConnection)} per connection`,
      );
      assert.ok(perConnection < IDLE_RSS_BOUND, `${kib(perConnection)} per idle connection (bound ${kib(IDLE_RSS_BOUND)})`);
      // Judged against the count once they are released (below), not the one at start: a
      // descriptor of the start-up still open then made this fail now and then.
      const heldFds = openDescriptors(pid);

      // A fresh client is served while they are held.
      await servedRoundTrip(proxy.port, false, 'still served');

      for (const socket of clients.splice(0)) socket.destroy();
      await activeReaches(proxy, (active) => active === 0, 'every idle connection released');
      const stats = await proxy.admin!.json<Stats>('/api/stats');
      assert.equal(stats.upstreams[0]!.active, 0, 'upstream gauge back to 0');
      await eventually(async () => ((await echo.connections()) === 0 ? true : undefined), 'the upstream holding none', 20_000);
      await descriptorsBackTo(pid, baselineFds);
      const releasedFds = openDescriptors(pid);
      assert.ok(heldFds - releasedFds >= 2 * IDLE, `two descriptors per bridged connection: ${heldFds} held, ${releasedFds} after release`);
    } finally {
      for (const socket of clients) socket.destroy();
    }
  });

  for (const mode of ['TLS termination', 'SNI routing'] as const) {
    it(`${mode}: ${STALLED} handshakes never finished: memory bounded, all cut at handshake_timeout, others served`, async (t) => {
      const keys =
        mode === 'TLS termination'
          ? { tls: { cert: certs.serverCert, key: certs.serverKey } }
          : { routes: [{ sni: 'a.example.com', upstreams: [echo.address] }] };
      const proxy = await startProxy({ ...keys, handshake_timeout: '8s' });
      const pid = proxy.child.pid!;
      const baselineRss = rssBytes(pid);
      const baselineFds = openDescriptors(pid);
      const clients: Socket[] = [];
      try {
        // The head of a handshake record announcing 512 bytes, and 5 of them: the TLS server
        // (or the ClientHello peek) has started and waits for the rest, which never comes.
        const partialHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03]);
        while (clients.length < STALLED) {
          const batch = await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, STALLED - clients.length) }, () => idleClient(proxy.port)));
          for (const socket of batch) socket.write(partialHello);
          clients.push(...batch);
        }
        // Every stalled client accepted and holding a handshake: its descriptor is the proxy's
        // (less 2: the baseline may have counted an admin connection that was still closing).
        let held = 0;
        await eventually(
          async () => ((held = openDescriptors(pid) - baselineFds) >= STALLED - 2 ? true : undefined),
          `${STALLED} stalled handshakes held`,
          15_000,
        ).catch((error: Error) => assert.fail(`${error.message} (the proxy holds ${held} descriptors more than at its baseline)`));
        const perHandshake = (rssBytes(pid) - baselineRss) / STALLED;
        t.diagnostic(`${mode}: ${STALLED} stalled handshakes: ${kib(perHandshake)} per handshake`);
        assert.ok(perHandshake < STALLED_RSS_BOUND, `${kib(perHandshake)} per stalled handshake (bound ${kib(STALLED_RSS_BOUND)})`);

        // A well-behaved client is served meanwhile.
        await servedRoundTrip(proxy.port, mode === 'TLS termination', 'still served');

        // Each is cut at handshake_timeout, refused with reason tls; nothing is left behind.
        await Promise.all(clients.filter((socket) => !socket.destroyed).map((socket) => once(socket, 'close')));
        await eventually(async () => {
          const rejected = (await proxy.admin!.json<Stats>('/api/stats')).listeners[0]!.rejections.tls;
          return rejected === STALLED ? true : undefined;
        }, `${STALLED} handshakes refused with reason tls`);
        await activeReaches(proxy, (active) => active === 0, 'no connection left');
        await descriptorsBackTo(pid, baselineFds);
      } finally {
        for (const socket of clients) socket.destroy();
      }
    });
  }
});
