/**
 * Slow and hostile peers (issue 12): each is bounded in time (handshake_timeout, the admin
 * server's head timeout) and does not hold up other clients, who are served meanwhile.
 * Thousands of idle connections and stalled handshakes, with the proxy's memory and
 * descriptors measured, are in idle-connections.test.ts (a proxy process of their own).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import pino from 'pino';
import { AdminServer } from '../../src/admin/server.js';
import { FakeRuntime } from '../admin/fake-runtime.js';
import { roundTrip } from '../helpers/ops.js';
import { oneListener, startProxy, type TestProxy } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { makeTestCertificates, type TestCertificates } from '../protocol/test-certs.js';
import { until } from '../helpers/wait.js';
import { connect } from '../helpers/sockets.js';

/** A real ClientHello (what tls.connect sends first), captured from a raw server. */
async function captureClientHello(servername: string): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername });
  client.on('error', () => undefined);
  const [[socket]] = (await Promise.all([once(server, 'connection')])) as [[Socket]];
  const [hello] = (await once(socket, 'data')) as [Buffer];
  client.destroy();
  socket.destroy();
  server.close();
  return hello;
}

/** Sends `bytes` one at a time, a few ms apart, until done or the socket closes; resolves with the count sent. */
function trickle(socket: Socket, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    const timer = setInterval(() => {
      if (socket.destroyed || sent === bytes.length) {
        clearInterval(timer);
        return resolve(sent);
      }
      socket.write(bytes.subarray(sent, ++sent));
    }, 5);
  });
}

/** A client that carries on meanwhile: one round trip through the proxy. */
async function servedMeanwhile(proxy: TestProxy): Promise<void> {
  const client = await connect(proxy.port);
  await roundTrip(client, 'still served');
  client.destroy();
}

describe('hostile peers', { timeout: 60_000 }, () => {
  let certs: TestCertificates;
  let dir: string;
  let echo: TestServer;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tcpproxy-hostile-'));
    certs = await makeTestCertificates(dir, { serverNames: ['a.example.com'] });
    echo = await startEchoServer();
  });
  after(async () => {
    await echo.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a TLS client that never sends its ClientHello is refused after handshake_timeout', async () => {
    const proxy = await startProxy(
      oneListener([echo.address], { tls: { cert: certs.serverCert, key: certs.serverKey }, handshake_timeout: '300ms', connect_timeout: '1m' }),
    );
    try {
      const silent = await connect(proxy.port);
      silent.on('error', () => undefined);
      const client = `127.0.0.1:${silent.localPort}`;
      const line = await proxy.waitForLog((l) => l.event === 'reject' && l.client === client);
      assert.equal(line.reason, 'tls');
      assert.equal(line.error, 'TLS handshake timed out');
      assert.equal(line.error_code, 'tls_handshake');
      silent.destroy();
    } finally {
      await proxy.stop();
    }
  });

  for (const mode of ['TLS termination', 'SNI routing'] as const) {
    it(`${mode}: a ClientHello trickled a byte at a time is cut at handshake_timeout, other clients are served`, async () => {
      const hello = await captureClientHello('a.example.com');
      const keys =
        mode === 'TLS termination'
          ? { tls: { cert: certs.serverCert, key: certs.serverKey } }
          : { routes: [{ sni: 'a.example.com', upstreams: [echo.address] }] };
      const proxy = await startProxy(oneListener([echo.address], { ...keys, handshake_timeout: '400ms', connect_timeout: '1m' }));
      try {
        const slow = await connect(proxy.port);
        slow.on('error', () => undefined);
        const client = `127.0.0.1:${slow.localPort}`;
        const sending = trickle(slow, hello);
        if (mode === 'SNI routing') {
          // A plain client on the default route, served while the trickler is held.
          await servedMeanwhile(proxy);
        }
        const line = await proxy.waitForLog((l) => l.event === 'reject' && l.client === client);
        assert.equal(line.reason, 'tls');
        assert.match(String(line.error), /timed out|not complete within 400 ms/);
        const sent = await sending;
        assert.ok(sent < hello.length, `the whole ClientHello (${hello.length} bytes) went through before the cut`);
      } finally {
        await proxy.stop();
      }
    });
  }

  it('a flood of connections reset right after the handshake leaves nothing behind; others are served', async () => {
    const proxy = await startProxy(oneListener([echo.address], { max_connections: 100 }));
    try {
      const flood = Array.from({ length: 2000 }, async () => {
        const socket = net.connect({ port: proxy.port, host: '127.0.0.1' });
        socket.on('error', () => undefined);
        await once(socket, 'connect');
        socket.resetAndDestroy();
      });
      await servedMeanwhile(proxy);
      await Promise.all(flood);
      await servedMeanwhile(proxy);
      const limits = proxy.runtime['running'].get('test')!.state.limits;
      await until(() => limits.active === 0 && proxy.runtime['running'].get('test')!.state.connections.size === 0, 'every flood connection released');
    } finally {
      await proxy.stop();
    }
  });

  it('the admin server cuts a client that never finishes its request head, and answers others', async () => {
    const logger = pino({ level: 'silent' });
    const server = new AdminServer({
      listen: { host: '127.0.0.1', port: 0 },
      runtime: new FakeRuntime(),
      logger,
      timeouts: { headersMs: 300, requestMs: 1_000, checkEveryMs: 100 },
    });
    const { port } = await server.start();
    try {
      const slow = await connect(port);
      slow.on('error', () => undefined);
      const received: Buffer[] = [];
      slow.on('data', (chunk: Buffer) => received.push(chunk));
      const ended = new Promise((resolve) => slow.once('close', resolve).once('end', resolve));
      slow.write('GET /api/stats HTTP/1.1\r\nHost: x\r\n');
      const dripping = setInterval(() => slow.writable && slow.write('X'), 20);
      // Another client is answered meanwhile.
      const other = await connect(port);
      other.end('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const [answer] = (await once(other, 'data')) as [Buffer];
      assert.match(answer.toString(), /^HTTP\/1\.1 200/);
      await ended;
      clearInterval(dripping);
      assert.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 408/, 'the slow client is told why');
      slow.destroy();
      other.destroy();
    } finally {
      await server.close();
    }
  });
});
