/**
 * Zero-copy reads for an accepted client socket.
 *
 * `net.connect({ onread })` makes a socket read into one caller-owned buffer instead of a
 * new Buffer per read; net.Server has no such option for the sockets it accepts. Those
 * per-read 64 KiB allocations are external memory that drives V8 into frequent major GCs,
 * which cost in proportion to the whole heap: measured, the client -> server direction ran
 * at half the speed of the server -> client one. So once the bridge is ready to carry bytes,
 * the accepted socket's handle (the libuv TCP handle, still not reading: pauseOnConnect) is
 * moved into a new net.Socket built with `onread`, and the empty shell is destroyed (which
 * also settles net.Server's connection count). This uses `_handle`, which Node does not
 * document; the bridge and TLS tests cover it on every supported version.
 *
 * Only a socket nothing has been read from qualifies: bytes already read (a PROXY header's
 * remainder, a peeked ClientHello) live in the
 * old stream and would be lost, and a TLS socket's handle carries ciphertext. Those keep the
 * 'data' path.
 */
import net, { type Socket } from 'node:net';

interface SocketInternals {
  _handle: object | null;
  _readableState: { ended: boolean };
}

/** What net.Server passes for an accepted socket, plus onread; typed here because @types/node omits them. */
interface AdoptOptions extends net.SocketConstructorOpts {
  handle: object;
  pauseOnCreate: boolean;
  onread: net.OnReadOpts;
}

/**
 * The same connection as `socket`, reading into `buffer`; undefined when it does not qualify.
 * A function is asked again after every read (as net.connect's onread): the buffer may change.
 */
export function readInPlace(socket: Socket, buffer: Buffer | (() => Buffer), callback: (length: number, buffer: Buffer) => boolean): Socket | undefined {
  const shell = socket as Socket & SocketInternals;
  const handle = shell._handle;
  if (handle === null || socket.constructor !== net.Socket || socket.destroyed) return undefined;
  // Bytes or an EOF already read (a PROXY header's remainder, a peeked ClientHello) are in the old stream.
  if (socket.bytesRead > 0 || socket.readableLength > 0 || shell._readableState.ended) return undefined;
  shell._handle = null;
  const options: AdoptOptions = {
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    pauseOnCreate: true,
    onread: { buffer, callback },
  };
  const adopted = new net.Socket(options);
  shell.destroy();
  return adopted;
}
