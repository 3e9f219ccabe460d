import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { Duplex } from 'node:stream';
import tls from 'node:tls';
import { after, before, describe, test } from 'node:test';
import {
  loadClientOptions,
  loadServerContext,
  TlsConfigError,
  tlsSessionInfo,
  type ClientTlsOptions,
  type ServerTlsOptions,
  type TlsSessionInfo,
} from '../../src/protocol/tls.js';
import { encodeV2, readProxyHeader } from '../../src/protocol/proxy-protocol.js';
import { startLoopbackServer } from './loopback.js';
import { makeTestCertificates, type TestCertificates } from './test-certs.js';

interface Handshake {
  /** The line the server echoed back, or the error that ended the client. */
  reply?: string;
  clientError?: NodeJS.ErrnoException;
  server?: TlsSessionInfo;
}

/**
 * One TLS connection on loopback between the loaders' options: the server records what it
 * saw of the session and echoes one line; the client reports the echo or its error.
 */
async function handshake(serverOptions: ServerTlsOptions, clientOptions: tls.ConnectionOptions): Promise<Handshake> {
  const result: Handshake = {};
  const server = tls.createServer(serverOptions, (socket) => {
    socket.on('error', () => {});
    result.server = tlsSessionInfo(socket);
    socket.once('data', (line: Buffer) => socket.end(line));
  });
  server.on('error', () => {}); // a listen failure rejects the once() below
  server.on('tlsClientError', () => {}); // refused handshakes are what some tests want
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    const client = tls.connect({ host: '127.0.0.1', port, ...clientOptions });
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.once('secureConnect', () => client.write('ping\n'));
    await new Promise<void>((resolve) => {
      client.once('error', (err: NodeJS.ErrnoException) => {
        result.clientError = err;
        resolve();
      });
      client.once('close', () => resolve());
    });
    client.destroy();
    if (result.clientError === undefined) result.reply = Buffer.concat(chunks).toString();
    return result;
  } finally {
    server.close();
    await once(server, 'close');
  }
}

describe('TLS loaders', { timeout: 20_000 }, () => {
  let dir: string;
  let certs: TestCertificates;
  let serverOptions: ServerTlsOptions;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tcpproxy-tls-'));
    certs = await makeTestCertificates(dir);
    serverOptions = loadServerContext({ cert: certs.serverCert, key: certs.serverKey }, dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const client = (spec: Parameters<typeof loadClientOptions>[0]): ClientTlsOptions => loadClientOptions(spec, dir);

  test('terminate and originate: a verified handshake, paths relative to baseDir', async () => {
    const relative = loadServerContext({ cert: basename(certs.serverCert), key: basename(certs.serverKey), minVersion: 'TLSv1.3' }, dir);
    const result = await handshake(relative, client({ ca: basename(certs.caCert), servername: 'localhost', verify: true }));
    assert.equal(result.reply, 'ping\n');
    assert.deepEqual({ ...result.server, cipher: undefined }, { version: 'TLSv1.3', sni: 'localhost', cipher: undefined, client_cert: 'none' });
  });

  test('verify checks the name: the certificate does not cover another host', async () => {
    const result = await handshake(serverOptions, client({ ca: certs.caCert, servername: 'other.example', verify: true }));
    assert.equal(result.clientError?.code, 'ERR_TLS_CERT_ALTNAME_INVALID');
  });

  test('verify without a ca uses the public roots, which do not know the test CA', async () => {
    const result = await handshake(serverOptions, client({ verify: true }));
    assert.match(result.clientError?.code ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
  });

  test('verify: false accepts any certificate', async () => {
    const result = await handshake(serverOptions, client({ verify: false }));
    assert.equal(result.reply, 'ping\n');
  });

  test('a required client certificate: accepted when valid, refused when missing', async () => {
    const mutual = loadServerContext({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert }, dir);
    assert.equal(mutual.requestCert, true);
    assert.equal(mutual.rejectUnauthorized, true, 'a ca makes the client certificate required by default');

    const withCert = await handshake(mutual, client({ ca: certs.caCert, verify: true, cert: certs.clientCert, key: certs.clientKey }));
    assert.equal(withCert.reply, 'ping\n');
    assert.equal(withCert.server?.client_cert, 'verified');

    const without = await handshake(mutual, client({ ca: certs.caCert, verify: true }));
    assert.ok(without.clientError !== undefined || without.reply === '', 'the server must refuse the connection');
    assert.equal(without.server, undefined, 'no session reached the application');
  });

  test('an optional client certificate: requested, its absence allowed', async () => {
    const optional = loadServerContext({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert, requireClientCert: false }, dir);
    const result = await handshake(optional, client({ ca: certs.caCert, verify: true }));
    assert.equal(result.reply, 'ping\n');
    assert.equal(result.server?.client_cert, 'none');
  });

  test('min_version TLSv1.3 refuses a TLSv1.2-only client', async () => {
    const modern = loadServerContext({ cert: certs.serverCert, key: certs.serverKey, minVersion: 'TLSv1.3' }, dir);
    // Plain options: a prebuilt secureContext would override maxVersion.
    const result = await handshake(modern, { ca: await readFile(certs.caCert), servername: 'localhost', maxVersion: 'TLSv1.2' });
    assert.ok(result.clientError !== undefined, 'handshake must fail');
  });

  test('configuration errors name the key and the file', async () => {
    const expectError = (load: () => unknown, key: string, message: RegExp) =>
      assert.throws(load, (err: unknown) => {
        assert.ok(err instanceof TlsConfigError, String(err));
        assert.equal(err.key, key);
        assert.match(err.message, message);
        return true;
      });
    const missing = join(dir, 'missing.pem');
    expectError(
      () => loadServerContext({ cert: 'missing.pem', key: certs.serverKey }, dir),
      'cert',
      new RegExp(`cannot read certificate file "${missing}" \\(ENOENT\\)`),
    );
    expectError(() => loadServerContext({ cert: certs.serverCert, key: certs.serverCert }, dir), 'key', /is not a PEM private key/);
    expectError(() => loadServerContext({ cert: certs.serverKey, key: certs.serverKey }, dir), 'cert', /is not a PEM certificate/);
    expectError(
      () => loadServerContext({ cert: certs.serverCert, key: certs.clientKey }, dir),
      'key',
      /cannot use certificate ".*server\.crt" with key ".*client\.key"/,
    );
    expectError(() => loadServerContext({ cert: certs.serverCert, key: certs.serverKey, requireClientCert: true }, dir), 'require_client_cert', /needs a ca/);
    expectError(() => loadClientOptions({ verify: true, cert: certs.clientCert }, dir), 'key', /cert and key must be given together/);

    const brokenCa = join(dirname(certs.caCert), 'broken-ca.pem');
    await writeFile(brokenCa, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
    expectError(() => loadClientOptions({ verify: true, ca: brokenCa }, dir), 'ca', /certificate #1 in ".*broken-ca\.pem" cannot be parsed/);
  });

  test('a PROXY header, then TLS terminated on the same connection (rest unshifted)', async () => {
    const server = await startLoopbackServer();
    try {
      const raw = net.connect({ port: server.port, host: '127.0.0.1' });
      raw.on('error', () => {});
      await once(raw, 'connect');
      const addresses = { family: 'tcp4' as const, source: { address: '203.0.113.9', port: 50000 }, destination: { address: '10.0.0.1', port: 443 } };
      // The header and the ClientHello leave in one write, as a load balancer may send them,
      // so the server reads them in one chunk and the hello is in `rest`.
      let header: Buffer | undefined = encodeV2(addresses);
      const tunnel = new Duplex({
        write(chunk: Buffer, _encoding, callback) {
          raw.write(header === undefined ? chunk : Buffer.concat([header, chunk]), callback);
          header = undefined;
        },
        read() {
          raw.resume();
        },
      });
      raw.on('data', (chunk: Buffer) => {
        if (!tunnel.push(chunk)) raw.pause();
      });
      raw.on('end', () => tunnel.push(null));
      const secureClient = tls.connect({ socket: tunnel, ...client({ ca: certs.caCert, servername: 'localhost', verify: true }) });
      secureClient.on('error', () => {});
      secureClient.once('secureConnect', () => secureClient.write('over tls\n'));

      const socket = await server.accepted();
      const received = await readProxyHeader(socket, 'v2', 5_000);
      assert.deepEqual(received.header.addresses, addresses);
      assert.equal(received.rest[0], 22, 'the ClientHello came with the header');
      socket.unshift(received.rest); // TLSSocket feeds what is buffered to the handshake
      const secure = new tls.TLSSocket(socket, { isServer: true, ...serverOptions });
      secure.on('error', () => {});
      const [line] = (await once(secure, 'data')) as [Buffer];
      assert.equal(line.toString(), 'over tls\n');
      secure.end('bye\n');
      const [reply] = (await once(secureClient, 'data')) as [Buffer];
      assert.equal(reply.toString(), 'bye\n');
      secureClient.destroy();
      raw.destroy();
    } finally {
      await server.close();
    }
  });
});
