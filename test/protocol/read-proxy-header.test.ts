import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { addressesFromSocket, encodeV1, encodeV2, ProxyProtocolError, readProxyHeader } from '../../src/protocol/proxy-protocol.js';
import { listenerCounts, startLoopbackServer, type LoopbackServer } from './loopback.js';
import { connect, readToEnd } from '../helpers/sockets.js';

const addresses = {
  family: 'tcp6' as const,
  source: { address: '2001:db8::7', port: 40000 },
  destination: { address: '2001:db8::1', port: 443 },
};

describe('readProxyHeader over loopback', { timeout: 10_000 }, () => {
  let server: LoopbackServer;
  before(async () => {
    server = await startLoopbackServer();
  });
  after(() => server.close());

  test('a header split across writes, client bytes after it preserved, socket left paused and clean', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    const baseline = listenerCounts(socket);
    const header = encodeV2(addresses);
    const reading = readProxyHeader(socket, 'any', 5_000);
    // Each part is sent only once the previous one has reached the server socket (a second
    // 'data' listener sees the same chunks), so the parser really sees the header in pieces.
    for (const part of [header.subarray(0, 5), header.subarray(5, 14), header.subarray(14, 30)]) {
      const arrived = once(socket, 'data');
      client.write(part);
      await arrived;
    }
    client.write(Buffer.concat([header.subarray(30), Buffer.from('hello ')]));
    const { header: received, rest } = await reading;

    assert.deepEqual(received, { version: 2, command: 'proxy', addresses });
    assert.deepEqual(listenerCounts(socket), baseline);
    assert.equal(socket.readableFlowing, false);
    client.end('world');
    const after = await readToEnd(socket);
    assert.equal(Buffer.concat([rest, after]).toString(), 'hello world');
  });

  test('a v1 header and data in one segment', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    client.end(Buffer.concat([encodeV1(addresses), Buffer.from('payload')]));
    const { header, rest } = await readProxyHeader(socket, 'v1', 5_000);
    assert.deepEqual(header.addresses, addresses);
    assert.equal(Buffer.concat([rest, await readToEnd(socket)]).toString(), 'payload');
  });

  test('bytes that arrived before the call are read too', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    const arrived = once(socket, 'readable');
    client.write(encodeV2(undefined));
    await arrived;
    assert.ok(socket.readableLength > 0);
    const { header, rest } = await readProxyHeader(socket, 'v2', 5_000);
    assert.deepEqual(header, { version: 2, command: 'local' });
    assert.equal(rest.length, 0);
    client.destroy();
  });

  test('a slow header times out', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    const baseline = listenerCounts(socket);
    client.write('PROXY TCP4 10.0.0.');
    const started = Date.now();
    await assert.rejects(readProxyHeader(socket, 'any', 150), (err: unknown) => {
      assert.ok(err instanceof ProxyProtocolError);
      assert.match(err.message, /PROXY protocol header not complete within 150 ms/);
      return true;
    });
    assert.ok(Date.now() - started >= 140, 'not before the timeout');
    assert.deepEqual(listenerCounts(socket), baseline);
    assert.equal(socket.destroyed, false, 'closing is the caller’s decision');
    client.destroy();
  });

  test('a malformed header is refused at once', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    const baseline = listenerCounts(socket);
    client.write('GET / HTTP/1.1\r\n');
    await assert.rejects(readProxyHeader(socket, 'any', 5_000), /missing PROXY protocol header/);
    assert.deepEqual(listenerCounts(socket), baseline);
    client.destroy();
  });

  test('a connection closed mid-header is refused', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    client.end(encodeV2(addresses).subarray(0, 20));
    await assert.rejects(readProxyHeader(socket, 'any', 5_000), /connection closed before the PROXY protocol header was complete/);
  });

  test('a reset connection rejects with the socket error', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    const reading = readProxyHeader(socket, 'any', 5_000);
    client.resetAndDestroy();
    await assert.rejects(reading, (err: unknown) => {
      // Either the reset itself or, if the close is seen first, an early-close refusal.
      assert.ok((err as NodeJS.ErrnoException).code === 'ECONNRESET' || err instanceof ProxyProtocolError, String(err));
      return true;
    });
  });

  test('a socket already closed is refused without waiting', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    socket.destroy();
    await assert.rejects(readProxyHeader(socket, 'any', 5_000), /connection closed before/);
    client.destroy();
  });

  test('addressesFromSocket describes an accepted connection, and undefined once it is gone', async () => {
    const client = await connect(server.port);
    const socket = await server.accepted();
    assert.deepEqual(addressesFromSocket(socket), {
      family: 'tcp4',
      source: { address: '127.0.0.1', port: client.localPort },
      destination: { address: '127.0.0.1', port: server.port },
    });
    client.destroy();
    socket.destroy();
    await once(socket, 'close');
    assert.equal(addressesFromSocket(socket), undefined);
  });
});
