/**
 * tcp-handle.ts and raw-socket.ts: every operation of the raw libuv handles on the Node
 * version in use, against real loopback peers (net.Socket on the other end): connect,
 * reads into a caller's buffer, writes (at once and held), FIN both ways, reset, close,
 * the errors (ECONNREFUSED, a reset mid-stream, a write after the peer reset), the
 * inactivity timeout on the deadline wheel, and the capability probe's switch.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { probe, tcpHandles, tcpHandlesOff } from '../../src/proxy/tcp-handle.js';
import { RawSocket } from '../../src/proxy/raw-socket.js';
import { deadlineWheel } from '../../src/proxy/deadline-wheel.js';
import { destroySocket } from '../../src/proxy/destroy-socket.js';
import { endWasReset } from '../../src/proxy/peer-probe.js';
import { refusedPort } from '../helpers/servers.js';
import { deferred } from '../helpers/wait.js';

const handles = tcpHandles!;

/** A server whose next accepted socket is returned (allowHalfOpen, as the proxy's peers may be). */
async function peerServer(): Promise<{ port: number; accepted: Promise<Socket>; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true });
  const accepted = deferred<Socket>();
  server.once('connection', (socket: Socket) => {
    socket.on('error', () => undefined);
    accepted.resolve(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, accepted: accepted.promise, close: () => server.close() };
}

/** A connected RawSocket reading into its own buffer; `received` collects what it read. */
async function connected(
  port: number,
): Promise<{ socket: RawSocket; received: Buffer[]; closed: Promise<void>; errors: NodeJS.ErrnoException[]; ended: Promise<void> }> {
  const socket = RawSocket.connect(handles, '127.0.0.1', port, false);
  const received: Buffer[] = [];
  const errors: NodeJS.ErrnoException[] = [];
  const closed = deferred();
  const ended = deferred();
  socket.on('error', (error) => errors.push(error));
  socket.on('close', () => closed.resolve());
  socket.on('end', () => ended.resolve());
  const up = deferred();
  socket.once('connect', () => up.resolve());
  await up.promise;
  socket.readInto(Buffer.alloc(1024), (length, buffer) => {
    received.push(Buffer.from(buffer.subarray(0, length)));
    return true;
  });
  socket.resume();
  return { socket, received, closed: closed.promise, errors, ended: ended.promise };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

describe('tcp-handle: the internals probe', () => {
  it('finds every internal it needs on this Node version', () => {
    assert.equal(tcpHandlesOff, undefined, `fast path off: ${tcpHandlesOff}`);
    assert.ok(tcpHandles);
  });

  it('is switched off by TCPPROXY_RAW_HANDLES=0', () => {
    assert.equal(probe({ TCPPROXY_RAW_HANDLES: '0' }), 'disabled by TCPPROXY_RAW_HANDLES=0');
    assert.equal(typeof probe({}), 'object');
  });
});

describe('raw-socket: every operation on a real connection', { skip: tcpHandles === undefined, timeout: 60_000 }, () => {
  it('connects, reads and writes both ways, carries FIN both ways, then closes', async () => {
    const server = await peerServer();
    const { socket, received, closed, ended } = await connected(server.port);
    const peer = await server.accepted;
    const fromPeer: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => fromPeer.push(chunk));
    peer.write('hello raw');
    await until(() => Buffer.concat(received).toString() === 'hello raw');
    assert.equal(
      socket.write(Buffer.from('hello peer'), () => undefined),
      true,
      'a small write completes at once',
    );
    assert.equal(socket.writableLength, 0);
    assert.equal(socket.localAddress, '127.0.0.1');
    assert.equal(typeof socket.localPort, 'number');
    // Our FIN: the peer reads its end and can still send.
    socket.end();
    await once(peer, 'end');
    assert.equal(Buffer.concat(fromPeer).toString(), 'hello peer');
    peer.end('bye');
    await ended;
    assert.equal(endWasReset(socket), false, 'a FIN is no reset');
    await closed;
    assert.equal(Buffer.concat(received).toString(), 'hello rawbye');
    assert.equal(socket.bytesRead, 12);
    assert.equal(socket.bytesWritten, 10);
    server.close();
  });

  it('holds a write the kernel cannot take, and completes it once the peer reads', async () => {
    const server = await peerServer();
    const { socket, closed } = await connected(server.port);
    const peer = await server.accepted;
    peer.pause();
    const chunk = Buffer.alloc(1024 * 1024, 7);
    const done = deferred();
    let written = 0;
    // Until a write is held: the peer reads nothing, the kernel buffers fill up.
    while (socket.write(chunk, () => done.resolve())) written += chunk.length;
    written += chunk.length;
    assert.ok(socket.writableLength > 0, 'a held write shows in writableLength');
    let read = 0;
    peer.on('data', (data: Buffer) => (read += data.length));
    peer.resume();
    await done.promise;
    assert.equal(socket.writableLength, 0);
    await until(() => read === written);
    socket.destroy();
    await closed;
    server.close();
  });

  for (const held of [false, true]) {
    it(`after the peer's FIN, end() delivers everything, then the FIN, and closes (${held ? 'a write held: shutdown after it' : 'nothing held: closed at once'})`, async () => {
      const server = await peerServer();
      const { socket, closed, ended } = await connected(server.port);
      const peer = await server.accepted;
      const received: Buffer[] = [];
      peer.on('data', (data: Buffer) => received.push(data));
      const peerEnded = once(peer, 'end');
      peer.end();
      await ended;
      if (held) peer.pause();
      const sent: Buffer[] = [];
      const chunk = Buffer.alloc(held ? 1024 * 1024 : 16 * 1024, 5);
      do sent.push(Buffer.from(chunk));
      while (socket.write(chunk) && held);
      assert.equal(socket.writableLength > 0, held);
      socket.end();
      peer.resume();
      await peerEnded;
      await closed;
      assert.equal(Buffer.concat(received).length, Buffer.concat(sent).length);
      server.close();
    });
  }

  it('reports ECONNREFUSED through error, then close', async () => {
    const socket = RawSocket.connect(handles, '127.0.0.1', await refusedPort(), false);
    const error = deferred<Error>();
    socket.on('error', (e) => error.resolve(e));
    const closedNow = deferred();
    socket.on('close', () => closedNow.resolve());
    assert.equal(((await error.promise) as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    await closedNow.promise;
    assert.equal(socket.destroyed, true);
  });

  it('reports a reset mid-stream as ECONNRESET (or as an EOF that endWasReset tells apart)', async () => {
    const server = await peerServer();
    const { socket, errors, closed, ended } = await connected(server.port);
    const peer = await server.accepted;
    peer.write('partial');
    await until(() => socket.bytesRead === 7);
    peer.resetAndDestroy();
    const outcome = await Promise.race([ended.then(() => 'end'), closed.then(() => 'closed')]);
    if (outcome === 'end') assert.equal(endWasReset(socket), true, 'an EOF after a reset is found out');
    else assert.equal(errors[0]?.code, 'ECONNRESET');
    socket.destroy();
    await closed;
    server.close();
  });

  it('fails a write after the peer reset with an error, not silently', async () => {
    const server = await peerServer();
    const { socket, errors, closed } = await connected(server.port);
    socket.pause(); // not reading: only the write can find the reset out
    const peer = await server.accepted;
    peer.resetAndDestroy();
    await once(peer, 'close');
    // The first write may still be accepted by the kernel (the RST answers it); a later one fails.
    const chunk = Buffer.alloc(64 * 1024);
    await until(() => {
      socket.write(chunk, () => undefined);
      return socket.destroyed;
    });
    await closed;
    assert.match(errors[0]?.code ?? '', /^(EPIPE|ECONNRESET)$/);
    server.close();
  });

  it('resets: the peer sees ECONNRESET', async () => {
    const server = await peerServer();
    const { socket, closed } = await connected(server.port);
    const peer = await server.accepted;
    const peerError = deferred<NodeJS.ErrnoException>();
    peer.removeAllListeners('error');
    peer.on('error', (e) => peerError.resolve(e));
    destroySocket(socket, true);
    await closed;
    assert.equal((await peerError.promise).code, 'ECONNRESET');
    server.close();
  });

  it('times out after inactivity on the deadline wheel, refreshed by activity, and leaves the wheel empty', async () => {
    const server = await peerServer();
    const { socket, closed } = await connected(server.port);
    const peer = await server.accepted;
    const timedOut = deferred();
    socket.on('timeout', () => timedOut.resolve());
    socket.setTimeout(100);
    peer.write('activity');
    await timedOut.promise;
    assert.equal(deadlineWheel.size, 0, 'the timeout fired once and is not re-armed by itself');
    socket.setTimeout(60_000);
    assert.equal(deadlineWheel.size, 1);
    socket.destroy();
    await closed;
    assert.equal(deadlineWheel.size, 0, 'destroy takes the socket off the wheel');
    server.close();
  });

  it('allows one listener per event (a second is a bug in the owner)', () => {
    const socket = RawSocket.connect(handles, '127.0.0.1', 9, false);
    socket.on('error', () => undefined);
    assert.throws(() => socket.on('error', () => undefined), /a second 'error' listener/);
    socket.destroy();
  });
});
