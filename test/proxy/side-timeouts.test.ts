/**
 * client_timeout and server_timeout end to end over real loopback sockets: each fires only
 * for the side that owes data or an acknowledgement (a silent upstream with an active client,
 * and the other way round), with its reason in the access log; idle_timeout keeps its meaning;
 * the flags map onto the keys; defaults change nothing.
 *
 * The two timeouts are set EQUAL in the blame tests: when both sides' timers run out together,
 * the reason must still name the side at fault, whichever timer fires first.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { buildSnapshot } from '../../src/config/load.js';
import { parseCommandLine } from '../../src/cli/args.js';
import { oneListener, startProxy, type TestProxy } from '../helpers/proxy.js';
import { startServer, type TestServer } from '../helpers/servers.js';
import { closed, connect } from '../helpers/sockets.js';

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);
const EQUAL = { client_timeout: '300ms', server_timeout: '300ms' };

/** Writes to `socket` for as long as it takes bytes, until it closes: an active sender. */
function pump(socket: Socket): void {
  socket.on('error', () => undefined);
  const write = (): void => {
    while (!socket.destroyed && socket.writable && socket.write(CHUNK));
  };
  socket.on('drain', write);
  write();
}

/** An upstream that neither reads nor writes: it accepts, then stays silent. */
const stalled = (): Promise<TestServer> => startServer((socket) => socket.pause());

async function closeReason(proxy: TestProxy): Promise<string> {
  return String((await proxy.waitForLog((line) => line.event === 'close', 20_000)).reason);
}

async function withProxy(server: TestServer, keys: Record<string, unknown>, run: (proxy: TestProxy) => Promise<void>): Promise<void> {
  const proxy = await startProxy(oneListener([server.address], keys));
  try {
    await run(proxy);
  } finally {
    await proxy.stop();
    await server.close();
  }
}

describe('client_timeout and server_timeout', { timeout: 60_000 }, () => {
  it('a stalled upstream under an active client: server_timeout, not client_timeout', async () => {
    await withProxy(await stalled(), EQUAL, async (proxy) => {
      const client = await connect(proxy.port);
      const done = closed(client);
      pump(client); // the client keeps sending; the upstream takes nothing once its buffers are full
      assert.equal(await closeReason(proxy), 'server_timeout');
      await done;
    });
  });

  it('an upstream that takes the request and never answers: server_timeout (the client has said all)', async () => {
    const silent = await startServer((socket) => socket.resume()); // reads everything, never writes
    await withProxy(silent, EQUAL, async (proxy) => {
      const client = await connect(proxy.port);
      const done = closed(client);
      client.end('request');
      assert.equal(await closeReason(proxy), 'server_timeout');
      await done;
    });
  });

  it('a client that stops reading under an active upstream: client_timeout, not server_timeout', async () => {
    const sender = await startServer((socket) => pump(socket));
    await withProxy(sender, EQUAL, async (proxy) => {
      const client = await connect(proxy.port);
      client.on('error', () => undefined);
      client.pause(); // reads nothing: the proxy's writes to it stop being taken
      assert.equal(await closeReason(proxy), 'client_timeout');
      client.destroy();
    });
  });

  it('a client that never sends after the upstream said all: client_timeout', async () => {
    const banner = await startServer((socket) => {
      socket.resume();
      socket.end('220 ready\r\n'); // and FIN: the upstream owes nothing more
    });
    await withProxy(banner, EQUAL, async (proxy) => {
      const client = await connect(proxy.port);
      client.on('error', () => undefined);
      client.resume(); // reads the banner and the FIN, then stays silent, half-open
      await once(client, 'end');
      assert.equal(await closeReason(proxy), 'client_timeout');
      client.destroy();
    });
  });

  it('only the side at fault is timed: a stalled client with only server_timeout set ends by idle_timeout', async () => {
    const sender = await startServer((socket) => pump(socket));
    await withProxy(sender, { server_timeout: '200ms', idle_timeout: '1s' }, async (proxy) => {
      const client = await connect(proxy.port);
      client.on('error', () => undefined);
      client.pause();
      assert.equal(await closeReason(proxy), 'idle_timeout');
      client.destroy();
    });
  });

  it('only the side at fault is timed: a stalled upstream with only client_timeout set ends by idle_timeout', async () => {
    await withProxy(await stalled(), { client_timeout: '200ms', idle_timeout: '1s' }, async (proxy) => {
      const client = await connect(proxy.port);
      const done = closed(client);
      pump(client);
      assert.equal(await closeReason(proxy), 'idle_timeout');
      await done;
    });
  });

  it('idle_timeout longer than client_timeout still fires while the client owes nothing', async () => {
    // The client half-closes (owes nothing); the upstream reads and stays silent, unwatched.
    const silent = await startServer((socket) => socket.resume());
    await withProxy(silent, { client_timeout: '200ms', idle_timeout: '500ms' }, async (proxy) => {
      const client = await connect(proxy.port);
      const done = closed(client);
      client.end('request');
      assert.equal(await closeReason(proxy), 'idle_timeout');
      await done;
    });
  });

  it('defaults: both off, idle_timeout unchanged; durations parsed; flags map to the keys', () => {
    const snapshot = buildSnapshot(oneListener(['127.0.0.1:9']));
    const listener = snapshot.listeners[0]!;
    assert.deepEqual([listener.client_timeout, listener.server_timeout, listener.idle_timeout], [0, 0, 600_000]);
    const set = buildSnapshot(oneListener(['127.0.0.1:9'], { client_timeout: '30s', server_timeout: '2m' })).listeners[0]!;
    assert.deepEqual([set.client_timeout, set.server_timeout], [30_000, 120_000]);
    assert.throws(() => buildSnapshot(oneListener(['127.0.0.1:9'], { server_timeout: 'soon' })), /listeners\[0\]\.server_timeout: expected a duration/);
    const command = parseCommandLine(['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--client-timeout', '30s', '--server-timeout', '1m']);
    assert.equal(command.kind, 'run');
    const raw = JSON.stringify(command);
    assert.match(raw, /"client_timeout":"30s"/);
    assert.match(raw, /"server_timeout":"1m"/);
  });

  it('a bad --server-timeout exits 2 naming the flag', async () => {
    const bin = new URL('../../../bin/tcpproxy', import.meta.url).pathname;
    const child = spawn(process.execPath, [bin, '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:9', '--server-timeout', 'soon'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(stderr, /--server-timeout: expected a duration/);
  });
});
