/** PROXY protocol (send/accept), TLS termination and origination, and SNI routing, end to end. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { before, describe, it } from 'node:test';
import { ProxyHeaderParser, encodeV2 } from '../../src/protocol/proxy-protocol.js';
import { makeTestCertificates, type TestCertificates } from '../protocol/test-certs.js';
import { oneListener, startProxy } from '../helpers/proxy.js';
import { startEchoServer, startServer } from '../helpers/servers.js';
import { deferred } from '../helpers/wait.js';
import { closed, connect, readToEnd, sha256 } from '../helpers/sockets.js';

describe('PROXY protocol', { timeout: 30_000 }, () => {
  for (const version of ['v1', 'v2'] as const) {
    it(`send ${version}: the upstream receives the real client address before any client byte`, async () => {
      const received = deferred<Buffer>();
      const server = await startServer((socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('end', () => {
          received.resolve(Buffer.concat(chunks));
          socket.end();
        });
      });
      const proxy = await startProxy(oneListener([server.address], { proxy_protocol: { send: version } }));
      try {
        const client = await connect(proxy.port, '127.0.0.1', '127.0.0.7');
        const clientPort = client.localPort;
        client.end('payload');
        const bytes = await received.promise;
        const result = new ProxyHeaderParser(version).push(bytes);
        assert.ok(result.done);
        assert.equal(result.header.addresses?.source.address, '127.0.0.7');
        assert.equal(result.header.addresses?.source.port, clientPort);
        assert.equal(result.header.addresses?.destination.port, proxy.port);
        assert.equal(result.rest.toString(), 'payload');
      } finally {
        await proxy.stop();
        await server.close();
      }
    });
  }

  it('accept + send: the header sent on carries both ends of the incoming one (the original destination, as HAProxy does)', async () => {
    const received: Buffer[] = [];
    const arrivals: ((bytes: Buffer) => void)[] = [];
    const server = await startServer((socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => {
        const bytes = Buffer.concat(chunks);
        received.push(bytes);
        arrivals.shift()?.(bytes);
        socket.end();
      });
    });
    const nextArrival = (): Promise<Buffer> => new Promise((resolve) => arrivals.push(resolve));
    try {
      for (const send of ['v1', 'v2'] as const) {
        const proxy = await startProxy(oneListener([server.address], { proxy_protocol: { accept: 'any', send } }));
        try {
          const cases = [
            { incoming: 'PROXY TCP4 198.51.100.9 203.0.113.80 40000 443\r\n', source: ['198.51.100.9', 40000], destination: ['203.0.113.80', 443] },
            { incoming: 'PROXY TCP6 2001:db8::7 2001:db8::1 40001 8443\r\n', source: ['2001:db8::7', 40001], destination: ['2001:db8::1', 8443] },
          ] as const;
          for (const { incoming, source, destination } of cases) {
            const arrived = nextArrival();
            const client = await connect(proxy.port);
            client.write(incoming);
            client.end('payload');
            const result = new ProxyHeaderParser(send).push(await arrived);
            assert.ok(result.done);
            assert.deepEqual([result.header.addresses?.source.address, result.header.addresses?.source.port], source, `${send}: ${incoming}`);
            assert.deepEqual([result.header.addresses?.destination.address, result.header.addresses?.destination.port], destination, `${send}: ${incoming}`);
            assert.equal(result.rest.toString(), 'payload');
          }
          // A LOCAL header (a health check of the proxy in front) names no ends: ours are sent.
          const arrived = nextArrival();
          const client = await connect(proxy.port);
          const clientPort = client.localPort;
          client.write('PROXY UNKNOWN\r\n');
          client.end('local');
          const result = new ProxyHeaderParser(send).push(await arrived);
          assert.ok(result.done);
          assert.equal(result.header.addresses?.source.port, clientPort);
          assert.equal(result.header.addresses?.destination.port, proxy.port);
        } finally {
          await proxy.stop();
        }
      }
      assert.equal(received.length, 6);
    } finally {
      await server.close();
    }
  });

  it('accept: the header sets the logged client and the ACL decision; bad headers are refused', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { proxy_protocol: { accept: 'any', timeout: '500ms' }, access: { deny: ['203.0.113.0/24'] } }));
    try {
      const good = await connect(proxy.port);
      const goodPort = good.localPort;
      const reply = readToEnd(good);
      good.write('PROXY TCP4 198.51.100.9 10.0.0.1 40000 443\r\n');
      good.end('hello');
      assert.equal((await reply).toString(), 'hello');
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.client, '198.51.100.9:40000');
      assert.equal(line.proxied_client, `127.0.0.1:${goodPort}`);

      const denied = await connect(proxy.port);
      denied.write('PROXY TCP4 203.0.113.5 10.0.0.1 40001 443\r\n');
      await closed(denied);
      assert.equal((await proxy.waitForLog((l) => l.event === 'reject' && l.reason === 'acl')).client, '203.0.113.5:40001');

      const garbage = await connect(proxy.port);
      garbage.write('GET / HTTP/1.1\r\n\r\n');
      await closed(garbage);
      await proxy.waitForLog((l) => l.event === 'reject' && l.reason === 'proxy_protocol');

      const slow = await connect(proxy.port);
      slow.write('PROXY TCP4 198.51');
      await closed(slow);
      assert.equal(proxy.accessLog().filter((l) => l.reason === 'proxy_protocol').length, 2);
      assert.equal(echo.accepted.length, 1, 'refused clients must not reach the upstream');
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });
});

describe('TLS', { timeout: 60_000 }, () => {
  let certs: TestCertificates;
  let ca: Buffer;
  before(async () => {
    certs = await makeTestCertificates(await mkdtemp(join(tmpdir(), 'tcpproxy-tls-')), { serverNames: ['a.example.com', 'b.example.com'] });
    ca = await readFile(certs.caCert);
  });

  it('terminates TLS: the client speaks TLS, the upstream plaintext; the log shows the TLS version', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { tls: { cert: certs.serverCert, key: certs.serverKey } }));
    try {
      const client = tls.connect({ port: proxy.port, host: '127.0.0.1', ca, servername: 'localhost' });
      await once(client, 'secureConnect');
      const version = client.getProtocol();
      const cipher = client.getCipher().name;
      const reply = readToEnd(client);
      client.end('secret');
      assert.equal((await reply).toString(), 'secret');
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.deepEqual(line.tls, { version, sni: 'localhost', cipher, client_cert: 'none' });
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it("a PROXY header then TLS: terminated, and SNI-routed, each logged with the header's client and the TLS details", async () => {
    const echo = await startEchoServer();
    const routedServer = tls.createServer({ cert: await readFile(certs.serverCert), key: await readFile(certs.serverKey) }, (socket) => socket.pipe(socket));
    routedServer.listen(0, '127.0.0.1');
    await once(routedServer, 'listening');
    const routed = {
      address: `127.0.0.1:${(routedServer.address() as AddressInfo).port}`,
      close: () => new Promise<void>((resolve) => routedServer.close(() => resolve())),
    };
    const terminating = await startProxy(
      oneListener([echo.address], { proxy_protocol: { accept: 'v1' }, tls: { cert: certs.serverCert, key: certs.serverKey } }),
    );
    const routing = await startProxy(
      oneListener([echo.address], { proxy_protocol: { accept: 'v2' }, routes: [{ sni: 'a.example.com', upstreams: [routed.address] }] }),
    );
    try {
      // Terminated: the header, then the handshake on the same connection, then plaintext upstream.
      const raw = await connect(terminating.port);
      const realClient = `127.0.0.1:${raw.localPort}`;
      raw.write('PROXY TCP4 198.51.100.7 10.0.0.1 40007 443\r\n');
      const client = tls.connect({ socket: raw, ca, servername: 'localhost' });
      await once(client, 'secureConnect');
      const reply = readToEnd(client);
      client.end('through the header and the handshake');
      assert.equal((await reply).toString(), 'through the header and the handshake');
      const line = await terminating.waitForLog((l) => l.event === 'close');
      assert.equal(line.client, '198.51.100.7:40007');
      assert.equal(line.proxied_client, realClient);
      assert.equal((line.tls as { version: string; sni: string }).sni, 'localhost');
      assert.equal(line.bytes_from_client, 'through the header and the handshake'.length, 'plaintext bytes, after the header and the handshake');
      assert.equal(echo.accepted.length, 1);

      // Not terminated: the header is consumed, the ClientHello peeked for its name, and the
      // TLS stream reaches the route's upstream (a TLS echo server) untouched.
      const second = await connect(routing.port);
      second.write(encodeV2({ family: 'tcp4', source: { address: '198.51.100.8', port: 40008 }, destination: { address: '10.0.0.1', port: 443 } }));
      const routedClient = tls.connect({ socket: second, ca, servername: 'a.example.com' });
      await once(routedClient, 'secureConnect');
      const routedReply = readToEnd(routedClient);
      routedClient.end('routed by name');
      assert.equal((await routedReply).toString(), 'routed by name');
      const routedLine = await routing.waitForLog((l) => l.event === 'close');
      assert.equal(routedLine.client, '198.51.100.8:40008');
      assert.equal(routedLine.upstream, routed.address);
      assert.equal((routedLine.tls as { sni: string }).sni, 'a.example.com');
      assert.equal(echo.accepted.length, 1, 'the default route was not taken');
    } finally {
      await terminating.stop();
      await routing.stop();
      await echo.close();
      await routed.close();
    }
  });

  it('requires a client certificate when ca is set', async () => {
    const echo = await startEchoServer();
    const proxy = await startProxy(oneListener([echo.address], { tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert } }));
    try {
      const anonymous = tls.connect({ port: proxy.port, host: '127.0.0.1', ca, servername: 'localhost' });
      anonymous.on('error', () => undefined);
      await closed(anonymous);
      await proxy.waitForLog((l) => l.event === 'reject' && l.reason === 'tls');
      const [cert, key] = await Promise.all([readFile(certs.clientCert), readFile(certs.clientKey)]);
      const trusted = tls.connect({ port: proxy.port, host: '127.0.0.1', ca, cert, key, servername: 'localhost' });
      await once(trusted, 'secureConnect');
      const reply = readToEnd(trusted);
      trusted.end('with cert');
      assert.equal((await reply).toString(), 'with cert');
      assert.equal(echo.accepted.length, 1);
    } finally {
      await proxy.stop();
      await echo.close();
    }
  });

  it('originates TLS to the upstream (upstream_tls with a CA)', async () => {
    const server = tls.createServer({ cert: await readFile(certs.serverCert), key: await readFile(certs.serverKey) }, (s) => s.pipe(s));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const proxy = await startProxy(oneListener([`127.0.0.1:${port}`], { upstream_tls: { ca: certs.caCert, servername: 'localhost' } }));
    try {
      const client = await connect(proxy.port);
      const reply = readToEnd(client);
      client.end('to a TLS server');
      assert.equal((await reply).toString(), 'to a TLS server');
    } finally {
      await proxy.stop();
      server.close();
    }
  });

  it('routes by SNI without terminating, passing 16 MiB through intact', async () => {
    const tlsServer = async (name: string) => {
      const server = tls.createServer({ cert: await readFile(certs.serverCert), key: await readFile(certs.serverKey) }, (s) => {
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => chunks.push(c));
        s.on('end', () => s.end(`${name}:${sha256(Buffer.concat(chunks))}`));
        s.on('error', () => undefined);
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
    };
    const a = await tlsServer('A');
    const b = await tlsServer('B');
    const proxy = await startProxy(oneListener([b.address], { routes: [{ sni: '*.example.com', upstreams: [a.address] }] }));
    try {
      const ask = async (servername: string, payload: Buffer) => {
        const client = tls.connect({ port: proxy.port, host: '127.0.0.1', ca, servername });
        await once(client, 'secureConnect');
        const reply = readToEnd(client);
        client.end(payload);
        return (await reply).toString();
      };
      const big = randomBytes(16 * 1024 * 1024);
      assert.equal(await ask('a.example.com', big), `A:${sha256(big)}`);
      assert.equal(await ask('localhost', Buffer.from('x')), `B:${sha256(Buffer.from('x'))}`);
      const line = await proxy.waitForLog((l) => l.event === 'close' && (l.tls as { sni?: string })?.sni === 'a.example.com');
      assert.equal(line.upstream, a.address);
    } finally {
      await proxy.stop();
      a.server.close();
      b.server.close();
    }
  });
});
