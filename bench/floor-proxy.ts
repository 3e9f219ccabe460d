/**
 * The floor: the least a Node proxy must do per connection, on the same raw libuv handles as
 * tcpproxy's plain path (src/proxy/tcp-handle.ts) and with the same system calls a correct
 * proxy cannot skip: the client's address (getpeername), TCP_NODELAY upstream, the FIN
 * carried through (shutdown), and the reset-after-FIN probe. Nothing else: no admission,
 * balancing, timeouts, metrics or access log, and no error reporting. It is a measuring
 * stick for `../shared/bench`, not a proxy to run: what tcpproxy costs above it is the price of
 * its features, what it costs above nginx is the price of Node.
 * Usage: node floor-proxy.js LISTEN_PORT UPSTREAM_PORT (127.0.0.1; 0 for any free port), prints
 * "ready PORT" once listening.
 */
import net from 'node:net';
import {
  tcpHandles,
  UV_EOF,
  type ConnectRequest,
  type ServerHandle,
  type SocketAddress,
  type TcpHandle,
  type TcpHandles,
  type WriteRequest,
} from '../src/proxy/tcp-handle.js';

const [listenPort, upstreamPort] = process.argv.slice(2).map(Number) as [number, number];
if (tcpHandles === undefined) throw new Error('raw TCP handles unavailable on this Node');
const handles: TcpHandles = tcpHandles;

let spareWrite: WriteRequest | undefined;

/** Read buffers, recycled: a connection takes two and gives them back at close. */
const freeBuffers: Buffer[] = [];

/** One side of a connection; its handle points back to it (`owner`), so no closure per side. */
class Side {
  other!: Side;
  buffer: Buffer;
  ended = false;
  closed = false;
  constructor(
    readonly handle: TcpHandle,
    readonly connection: Connection,
  ) {
    handle.owner = this;
    this.buffer = freeBuffers.pop() ?? Buffer.allocUnsafeSlow(16 * 1024);
  }

  startReading(): void {
    this.handle.useUserBuffer(this.buffer);
    this.handle.onread = onRead;
    this.handle.readStart();
  }
}

class Connection {
  readonly client: Side;
  readonly upstream: Side;
  constructor(clientHandle: TcpHandle) {
    this.client = new Side(clientHandle, this);
    this.upstream = new Side(handles.newTcp(), this);
    this.client.other = this.upstream;
    this.upstream.other = this.client;
  }

  close(): void {
    for (const side of [this.client, this.upstream]) {
      if (side.closed) continue;
      side.closed = true;
      side.handle.close();
      freeBuffers.push(side.buffer);
    }
  }
}

/** Read, write, and read again only once the write completed (stopped meanwhile). */
function onRead(this: TcpHandle): void {
  const side = this.owner as Side;
  const result = handles.lastReadResult();
  if (result > 0) {
    // One request serves every write the kernel takes at once; libuv keeps one it could not.
    const write = (spareWrite ??= handles.newWrite());
    if (side.other.handle.writeBuffer(write, side.buffer.subarray(0, result)) !== 0) return side.connection.close();
    if (!handles.lastWriteWasAsync()) return;
    spareWrite = undefined;
    write.handle = side.other.handle;
    write.oncomplete = onWritten;
    this.readStop();
  } else if (result === UV_EOF) {
    // Both ways done: closed. Otherwise the FIN is carried on, unless a reset followed it
    // (a FIN then an RST reads as the FIN alone): the probe tells them apart.
    if (side.other.ended || this.getpeername({}) !== 0) return side.connection.close();
    side.ended = true;
    const shutdown = handles.newShutdown();
    shutdown.handle = side.other.handle;
    shutdown.oncomplete = ignoreStatus;
    side.other.handle.shutdown(shutdown);
  } else if (result < 0) side.connection.close();
}

/** `this.handle` is the side written to: its other side read the bytes. */
function onWritten(this: WriteRequest, status: number): void {
  const reader = (this.handle!.owner as Side).other;
  if (status < 0) return reader.connection.close();
  if (!reader.closed) reader.handle.readStart();
}

function ignoreStatus(): void {
  // the FIN went out, or the connection is closing anyway
}

function onConnected(this: ConnectRequest, status: number, upstream: TcpHandle): void {
  const { connection } = upstream.owner as Side;
  if (status < 0 || connection.client.closed) return connection.close();
  connection.client.startReading();
  connection.upstream.startReading();
}

function onClientAccepted(this: ServerHandle, status: number, clientHandle: TcpHandle | undefined): void {
  if (status !== 0 || clientHandle === undefined) return;
  const peer: SocketAddress = {};
  if (clientHandle.getpeername(peer) !== 0) return clientHandle.close();
  const connection = new Connection(clientHandle);
  connection.upstream.handle.setNoDelay(true);
  const connect = handles.newConnect();
  connect.oncomplete = onConnected;
  if (connection.upstream.handle.connect(connect, '127.0.0.1', upstreamPort) !== 0) connection.close();
}

const server = net.createServer();
server.listen(listenPort, '127.0.0.1', () => {
  // As listener.ts does: accepted clients come to the server handle's onconnection.
  const serverHandle = (server as unknown as { _handle: ServerHandle & { setNoDelay(on: boolean): number } })._handle;
  serverHandle.setNoDelay(true);
  serverHandle.onconnection = onClientAccepted;
  process.stdout.write(`ready ${(server.address() as net.AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
