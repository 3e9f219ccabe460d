/** The client side of the tests: connect, read to the end or a count, and see how a socket ended. */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type Socket } from 'node:net';

/**
 * A connected client socket: half-open allowed (the tests drive half-close themselves), Nagle
 * off (each write leaves at once, so framing tests control the segments), and an 'error'
 * handler: a refused client that has sent bytes is reset by the proxy, and that must not
 * surface as an unhandled error (tests that care watch 'close', `closed()` or `closeOutcome()`).
 */
export async function connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<Socket> {
  const socket = net.connect({ port, host, allowHalfOpen: true, noDelay: true, ...(localAddress && { localAddress }) });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  return socket;
}

/**
 * Resolves with everything `socket` receives until its end (FIN); rejects when it closes or
 * fails before that (a reset is not an end). A socket the peer already ended before the test
 * looked resolves empty when nothing was left unread.
 */
export function readToEnd(socket: Socket): Promise<Buffer> {
  if (socket.readableEnded) {
    return socket.readableLength === 0 ? Promise.resolve(Buffer.alloc(0)) : Promise.reject(new Error(`ended with ${socket.readableLength} bytes unread`));
  }
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => void chunks.push(chunk);
    const onEnd = (): void => {
      socket.off('close', onClose);
      resolve(Buffer.concat(chunks));
    };
    const onClose = (): void => {
      const error: NodeJS.ErrnoException | null = socket.errored;
      reject(new Error(`closed before its end (${error?.code ?? error?.message ?? 'no error'}) after ${Buffer.concat(chunks).length} bytes`));
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    // Also when the socket was paused (pauseOnConnect, or a test that paused it).
    socket.resume();
  });
}

/**
 * Resolves with everything `socket` receives until the peer stops sending, by a FIN or a
 * reset: for connections the proxy cuts, where the test asserts apart how they ended.
 */
export function readUntilClosed(socket: Socket): Promise<Buffer> {
  if (socket.destroyed || socket.readableEnded) {
    return socket.readableLength === 0 ? Promise.resolve(Buffer.alloc(0)) : Promise.reject(new Error(`closed with ${socket.readableLength} bytes unread`));
  }
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => {
    const done = (): void => resolve(Buffer.concat(chunks));
    socket.once('end', done);
    socket.once('close', done);
  });
}

/** Resolves with the first `count` bytes `socket` receives (rejects if it closes first). */
export function readBytes(socket: Socket, count: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let received = 0;
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= count) {
        cleanup();
        resolve(Buffer.concat(chunks));
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`closed after ${received} of ${count} bytes: ${JSON.stringify(Buffer.concat(chunks).toString('latin1'))}`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/**
 * Resolves when the peer ends `socket` (FIN: 'end', the socket being half-open) or it
 * closes for any reason; reports whether it saw an error and which.
 */
export function closed(socket: Socket): Promise<{ error: NodeJS.ErrnoException | undefined }> {
  let error: NodeJS.ErrnoException | undefined;
  socket.on('error', (err) => (error = err));
  return new Promise((resolve) => {
    if (socket.destroyed && !socket.connecting) return resolve({ error });
    const done = (): void => {
      // An error may follow the end within the same tick (a reset after FIN).
      setImmediate(() => {
        socket.destroy();
        resolve({ error });
      });
    };
    socket.once('close', done);
    socket.once('end', done);
    socket.resume();
  });
}

/**
 * How the peer ended `socket`: 'end' (a FIN), or the error code (ECONNRESET for a reset).
 * Reads and discards whatever still arrives.
 */
export function closeOutcome(socket: Socket): Promise<string> {
  // Ended already (the peer was quicker than the test): the socket remembers how.
  if (socket.destroyed || socket.readableEnded) {
    const error: NodeJS.ErrnoException | null = socket.errored;
    return Promise.resolve(error ? (error.code ?? error.message) : socket.readableEnded ? 'end' : 'closed');
  }
  return new Promise((resolve) => {
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    socket.once('end', () => resolve('end'));
    socket.once('close', () => resolve('closed'));
    socket.resume();
  });
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
