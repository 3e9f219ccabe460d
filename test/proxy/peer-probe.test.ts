/**
 * peer-probe: the one use of Node internals behind the dead-peer sweep (the handle's
 * getpeername), checked on real loopback sockets that are not being read, TLS included.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import tls from 'node:tls';
import { endIfPeerGone, peerIsGone } from '../../src/proxy/peer-probe.js';
import { makeTestCertificates } from '../protocol/test-certs.js';
import { until } from '../helpers/wait.js';

/** A connected pair; the accepted side stays paused (never read), as the proxy's paused directions. */
async function pair(): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  // Every accepted socket is destroyed by close(): a paused one would hold server.close() forever.
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    acceptedBy.set(server, [...(acceptedBy.get(server) ?? []), socket]);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  client.on('error', () => undefined);
  const [[accepted]] = (await Promise.all([once(server, 'connection'), once(client, 'connect')])) as [[Socket], unknown];
  accepted.on('error', () => undefined);
  return { server, client, accepted };
}

const acceptedBy = new Map<Server, Socket[]>();

async function close(server: Server, ...sockets: Socket[]): Promise<void> {
  for (const socket of [...sockets, ...(acceptedBy.get(server) ?? [])]) socket.destroy();
  acceptedBy.delete(server);
  server.close();
  await once(server, 'close');
}

describe('peerIsGone', { timeout: 20_000 }, () => {
  it('is false for a live peer and for a half-closed one, true once the peer reset', async () => {
    const { server, client, accepted } = await pair();
    assert.equal(peerIsGone(accepted), false, 'a live peer');
    client.end();
    accepted.resume();
    await once(accepted, 'end'); // the FIN is in: our side is in CLOSE_WAIT
    accepted.pause();
    assert.equal(peerIsGone(accepted), false, 'a half-closed peer still wants its answer');
    client.resetAndDestroy();
    await until(() => peerIsGone(accepted), 'the reset seen by the probe');
    assert.equal(accepted.destroyed, false, 'the probe itself never touches the socket');
    await close(server, accepted);
  });

  it('is false for a socket still connecting and for a destroyed one', async () => {
    const { server, client, accepted } = await pair();
    const connecting = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
    connecting.on('error', () => undefined);
    assert.equal(connecting.connecting, true);
    assert.equal(peerIsGone(connecting), false);
    client.destroy();
    assert.equal(peerIsGone(client), false);
    await once(connecting, 'connect');
    await close(server, accepted, connecting);
  });

  it('sees through a TLS socket to the TCP connection below', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tcpproxy-probe-'));
    const certs = await makeTestCertificates(dir);
    const { server, client, accepted } = await pair();
    try {
      const secure = new tls.TLSSocket(accepted, { isServer: true, cert: await readFile(certs.serverCert), key: await readFile(certs.serverKey) });
      secure.on('error', () => undefined);
      const tlsClient = tls.connect({ socket: client, ca: await readFile(certs.caCert), servername: 'localhost' });
      tlsClient.on('error', () => undefined);
      await Promise.all([once(secure, 'secure'), once(tlsClient, 'secureConnect')]);
      secure.pause();
      assert.equal(peerIsGone(secure), false);
      client.resetAndDestroy();
      await until(() => peerIsGone(secure), 'the reset seen through TLS');
      secure.destroy();
    } finally {
      await close(server, accepted);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('endIfPeerGone', { timeout: 20_000 }, () => {
  it('destroys a socket whose peer reset with ECONNRESET, and only then', async () => {
    const { server, client, accepted } = await pair();
    assert.equal(endIfPeerGone(accepted), false);
    client.resetAndDestroy();
    await until(() => peerIsGone(accepted), 'the reset');
    const errored = once(accepted, 'error');
    assert.equal(endIfPeerGone(accepted), true);
    const [error] = (await errored) as [NodeJS.ErrnoException];
    assert.equal(error.code, 'ECONNRESET');
    await close(server, accepted);
  });

  it('leaves alone a socket whose FIN we sent: a peer that closed in turn looks the same as one that reset', async () => {
    const { server, client, accepted } = await pair();
    accepted.end();
    client.on('end', () => client.end());
    client.resume();
    await until(() => peerIsGone(accepted), 'both FINs exchanged: CLOSE');
    assert.equal(endIfPeerGone(accepted), false, 'its unread data must still be carried');
    assert.equal(accepted.destroyed, false);
    await close(server, accepted, client);
  });
});
