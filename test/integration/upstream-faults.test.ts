/**
 * Upstream faults (issue 12): an upstream that goes silent mid-stream, one that resets
 * mid-download, one that accepts and never reads. The client must see the right outcome
 * (an end after idle_timeout; a reset, never a clean end that would pass for a complete
 * download) and the access log must say why.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { peerIsGone } from '../../src/proxy/peer-probe.js';
import { oneListener, startProxy } from '../helpers/proxy.js';
import { startServer } from '../helpers/servers.js';
import { deferred } from '../helpers/wait.js';
import { connect } from '../helpers/sockets.js';

const IDLE_MS = 500;

/**
 * Resolves when the socket ends or closes: how, and how many bytes it received. An 'end'
 * on a socket whose connection the kernel has closed is a reset: libuv reports a reset that
 * follows data as EOF (see endWasReset in src/proxy/peer-probe.ts), where recv(2) says ECONNRESET.
 */
function outcome(socket: Socket): Promise<{ how: 'end' | 'error' | 'close'; code?: string; received: number }> {
  let received = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.length));
  return new Promise((resolve) => {
    socket.once('error', (error: NodeJS.ErrnoException) => resolve({ how: 'error', code: error.code ?? '', received }));
    socket.once('end', () => resolve(peerIsGone(socket) ? { how: 'error', code: 'ECONNRESET', received } : { how: 'end', received }));
    socket.once('close', () => resolve({ how: 'close', received }));
  });
}

describe('upstream faults', { timeout: 30_000 }, () => {
  it('an upstream that stops answering mid-stream (no FIN, no RST): closed at idle_timeout, logged idle_timeout', async () => {
    const silent = deferred<Socket>();
    const upstream = await startServer((socket) => {
      // Echoes the first chunk, then neither reads nor writes again, and keeps the connection.
      socket.once('data', (chunk: Buffer) => {
        socket.pause();
        socket.write(chunk);
        silent.resolve(socket);
      });
    });
    const proxy = await startProxy(oneListener([upstream.address], { idle_timeout: `${IDLE_MS}ms` }));
    try {
      const client = await connect(proxy.port);
      const ended = outcome(client);
      client.write(randomBytes(1000));
      await silent.promise;
      const result = await ended;
      assert.notEqual(result.how, 'error', `the client saw ${result.code}`);
      assert.ok(result.received > 0, 'the echo before the silence never arrived');
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'idle_timeout');
      assert.ok(Number(line.duration_ms) >= IDLE_MS, `closed after ${String(line.duration_ms)} ms, before idle_timeout`);
      client.destroy();
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });

  it('an upstream that resets mid-download: the client gets a reset (not a clean end), logged error ECONNRESET', async () => {
    const SIZE = 8 * 1024 * 1024;
    const serving = deferred<Socket>();
    const upstream = await startServer((socket) => {
      socket.write(randomBytes(64 * 1024));
      serving.resolve(socket);
    });
    const proxy = await startProxy(oneListener([upstream.address]));
    try {
      const client = await connect(proxy.port);
      const result = outcome(client);
      // The download is under way (bytes reached the client): more, then the reset.
      await new Promise((resolve) => client.once('data', resolve));
      const socket = await serving.promise;
      // Reset with most of it still unsent: the client cannot have had it all.
      socket.write(randomBytes(SIZE));
      setImmediate(() => socket.resetAndDestroy());
      const { how, code } = await result;
      const outcomeSeen = { how, code };
      assert.deepEqual(outcomeSeen, { how: 'error', code: 'ECONNRESET' }, 'a reset upstream must not look like a complete download');
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'error');
      assert.equal(line.error, 'ECONNRESET');
      assert.ok(Number(line.bytes_to_client) < SIZE + 64 * 1024, 'the whole download was carried');
      client.destroy();
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });

  it('an upstream that accepts and never reads: the stalled upload ends at idle_timeout, logged idle_timeout', async () => {
    const upstream = await startServer((socket) => socket.pause());
    const proxy = await startProxy(oneListener([upstream.address], { idle_timeout: `${IDLE_MS}ms`, buffer_size: '16KiB' }));
    try {
      const client = await connect(proxy.port);
      const ended = outcome(client);
      const chunk = randomBytes(1024 * 1024);
      // Writes until the proxy (and the upstream's buffers behind it) stop taking bytes.
      let sent = 0;
      const pour = (): void => {
        while (!client.destroyed && sent < 256 * 1024 * 1024 && client.write(chunk)) sent += chunk.length;
      };
      client.on('drain', pour);
      pour();
      const result = await ended;
      const line = await proxy.waitForLog((l) => l.event === 'close');
      assert.equal(line.reason, 'idle_timeout');
      assert.ok(Number(line.bytes_from_client) < sent + chunk.length, 'more bytes carried than were sent');
      assert.ok(Number(line.duration_ms) >= IDLE_MS);
      assert.ok(result.how !== 'end' || result.received === 0, 'the client was sent data it never asked for');
      client.destroy();
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});
