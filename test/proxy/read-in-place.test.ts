/**
 * readInPlace: an accepted socket's handle moved into a socket that reads into one buffer.
 * Real loopback connections; the server accepts paused, as the Listener does.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo, type Server, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { readInPlace } from '../../src/proxy/read-in-place.js';
import { until } from '../helpers/wait.js';
import { sha256 } from '../helpers/sockets.js';

async function acceptPaused(): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const [[accepted]] = (await Promise.all([once(server, 'connection'), once(client, 'connect')])) as [[Socket], unknown];
  return { server, client, accepted };
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('readInPlace', { timeout: 20_000 }, () => {
  it('carries every byte into the one buffer, then EOF, and leaves net.Server no connection to wait for', async () => {
    const { server, client, accepted } = await acceptPaused();
    const buffer = Buffer.allocUnsafe(64 * 1024);
    const received: Buffer[] = [];
    const adopted = readInPlace(accepted, buffer, (length, into) => {
      assert.equal(into, buffer, 'read into another buffer');
      received.push(Buffer.from(into.subarray(0, length)));
      return true;
    });
    assert.ok(adopted, 'a fresh accepted socket did not qualify');
    assert.ok(accepted.destroyed, 'the shell was left open');
    const payload = randomBytes(8 << 20);
    client.end(payload);
    adopted.resume();
    await once(adopted, 'end');
    assert.equal(sha256(Buffer.concat(received)), sha256(payload));
    assert.equal(adopted.bytesRead, payload.length);
    // Writing back works on the adopted socket too, and the peer sees it.
    adopted.end('bye');
    const [reply] = (await once(client, 'data')) as [Buffer];
    assert.equal(reply.toString(), 'bye');
    // server.close() waits for its connections: the shell's destroy settled the count.
    await closeServer(server);
    client.destroy();
    adopted.destroy();
  });

  it('pausing by returning false stops reading until resume()', async () => {
    const { server, client, accepted } = await acceptPaused();
    let reads = 0;
    const adopted = readInPlace(accepted, Buffer.allocUnsafe(1024), () => {
      reads++;
      return false;
    })!;
    adopted.resume();
    client.write('first');
    await until(() => reads === 1, 'the first read');
    client.write('second');
    // Nothing is read while paused; resume reads what waited in the kernel.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reads, 1);
    adopted.resume();
    await until(() => reads === 2, 'the read after resume');
    client.destroy();
    adopted.destroy();
    await closeServer(server);
  });

  it('does not take a socket something was read from (its bytes are in the old stream)', async () => {
    const { server, client, accepted } = await acceptPaused();
    client.write('hello');
    accepted.resume();
    await once(accepted, 'data');
    accepted.pause();
    assert.equal(
      readInPlace(accepted, Buffer.allocUnsafe(1024), () => true),
      undefined,
    );
    assert.ok(!accepted.destroyed);
    client.destroy();
    accepted.destroy();
    await closeServer(server);
  });

  it('does not take a socket whose EOF was already seen', async () => {
    const { server, client, accepted } = await acceptPaused();
    const keepBuffered = (): void => {};
    accepted.on('readable', keepBuffered);
    client.end();
    await until(() => (accepted as unknown as { _readableState: { ended: boolean } })._readableState.ended, 'the EOF');
    accepted.off('readable', keepBuffered);
    assert.equal(
      readInPlace(accepted, Buffer.allocUnsafe(1024), () => true),
      undefined,
    );
    client.destroy();
    accepted.destroy();
    await closeServer(server);
  });
});
