/**
 * A socket over a raw libuv TCP handle (tcp-handle.ts): the plain path's replacement for
 * net.Socket, with none of its stream machinery. It offers exactly the part of net.Socket
 * that the bridge's plain loop, the connector, the side timeouts, the peer probe and
 * destroySocket use (the `PlainSocket` interface), with the same meaning, so that each of
 * them is written once for both kinds of socket:
 *
 *   reads     into one caller-owned buffer (`readInto`), the callback answering "read
 *             again?" as net's `onread` does; resume()/pause() start and stop reading;
 *   writes    write(buffer, callback): done at once when the kernel took everything
 *             (writableLength stays 0, the callback is NOT called); otherwise libuv holds
 *             the buffer until `callback` (the bridge reads again only then);
 *   end       a FIN after the pending writes (shutdown); destroy / resetAndDestroy close;
 *   events    'connect', 'end', 'error', 'close', 'timeout': one listener each, called
 *             directly (no EventEmitter, nothing allocated per event). 'error' comes
 *             before 'close', 'close' once the handle is closed, as with net.Socket.
 *   timeout   setTimeout(ms) on the process's deadline wheel, refreshed by activity.
 *
 * No closure is created per socket: libuv calls shared functions with the handle as
 * `this`, and the handle points back to its socket (`owner`).
 */
import { getSystemErrorName } from 'node:util';
import { TcpProxyError, type SystemErrorCode } from '../errors/errors.js';
import type { Socket } from 'node:net';
import { deadlineWheel, RESOLUTION_MS, type Deadline } from './deadline-wheel.js';
import { UV_EOF, type ShutdownRequest, type SocketAddress, type TcpHandle, type TcpHandles, type WriteRequest } from './tcp-handle.js';
import { UV_ENOTCONN } from './peer-probe.js';

/** What the plain loop needs of a socket; net.Socket has it too. */
export interface PlainSocket {
  readonly bytesRead: number;
  readonly bytesWritten: number | undefined;
  readonly writableLength: number;
  readonly destroyed: boolean;
  readonly connecting: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly readableEnded: boolean;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  end(): unknown;
  destroy(error?: Error): unknown;
  resetAndDestroy(): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
  setTimeout(ms: number): unknown;
  on(event: 'timeout' | 'end' | 'close' | 'connect', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'timeout' | 'end' | 'close' | 'connect', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'timeout' | 'end' | 'close' | 'connect', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
}

/** A failed libuv call, with the system's code (ECONNRESET...) as net.Socket's errors have it. */
export class RawSocketError extends TcpProxyError {
  constructor(
    readonly errno: number,
    syscall: string,
  ) {
    const code = errno === UV_EOF ? 'EOF' : (getSystemErrorName(errno) as SystemErrorCode);
    super(code, `${syscall} ${code}`);
  }
}

type Listener = () => void;
type ErrorListener = (error: Error) => void;
type ReadCallback = (length: number, buffer: Buffer) => boolean;

export class RawSocket implements PlainSocket, Deadline {
  bytesRead = 0;
  /** Bytes handed to write() (as net.Socket counts them). */
  bytesWritten = 0;
  destroyed = false;
  connecting = false;
  writableEnded = false;
  writableFinished = false;
  readableEnded = false;
  wheelTick: number | undefined;
  /** Bytes of writes libuv still holds. */
  private pendingBytes = 0;
  private pendingWrites = 0;
  private reading = false;
  private buffer: Buffer | undefined;
  private readCallback: ReadCallback | undefined;
  private writeCallback: ((error?: Error | null) => void) | undefined;
  private onConnect: Listener | undefined;
  private onEnd: Listener | undefined;
  private onClose: Listener | undefined;
  private onTimeout: Listener | undefined;
  private onError: ErrorListener | undefined;
  private timeoutMs = 0;
  /** The wheel's coarse time of the last activity (a read, a write taken) or of setTimeout(). */
  private activeAt = 0;
  private local: SocketAddress | undefined;

  constructor(
    readonly handles: TcpHandles,
    /** Named as net.Socket's, so that peer-probe.ts reads both the same way. */
    readonly _handle: TcpHandle,
  ) {
    _handle.owner = this;
    _handle.onread = onHandleRead;
  }

  /** Opens a connection; 'connect' or 'error' follows. Only for an IP address (no DNS here). */
  static connect(handles: TcpHandles, address: string, port: number, ipv6: boolean): RawSocket {
    const socket = new RawSocket(handles, handles.newTcp());
    socket._handle.setNoDelay(true);
    socket.connecting = true;
    const request = handles.newConnect();
    request.oncomplete = onConnectDone;
    const status = ipv6 ? socket._handle.connect6(request, address, port) : socket._handle.connect(request, address, port);
    // As net.Socket does, an immediate failure is reported on the next tick: listeners are not attached yet.
    if (status !== 0) process.nextTick(failConnect, socket, status);
    return socket;
  }

  /**
   * Where reads go from now on (the bridge's recycled buffer); reading starts with resume().
   * Called again to switch to a bigger buffer, at most twice per socket (read-buffers.ts):
   * each call stacks one small native listener on the handle, freed with it.
   */
  readInto(buffer: Buffer, callback: ReadCallback): void {
    this.buffer = buffer;
    this.readCallback = callback;
    this._handle.useUserBuffer(buffer);
  }

  get writableLength(): number {
    return this.pendingBytes;
  }

  get localAddress(): string | undefined {
    return this.sockname().address;
  }

  get localPort(): number | undefined {
    return this.sockname().port;
  }

  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    if (this.destroyed || this.writableEnded) return false;
    const request = (spareWrite ??= this.handles.newWrite());
    const status = this._handle.writeBuffer(request, chunk);
    this.bytesWritten += chunk.length;
    if (status !== 0) {
      this.destroy(new RawSocketError(status, 'write'));
      return false;
    }
    if (!this.handles.lastWriteWasAsync()) {
      this.activeAt = deadlineWheel.now;
      return true;
    }
    // libuv keeps this request (and the buffer) until it completes: the next write needs a new one.
    spareWrite = this.handles.newWrite();
    request.oncomplete = onWriteDone;
    request.handle = this._handle;
    this.pendingWrites++;
    this.pendingBytes += chunk.length;
    this.writeCallback = callback;
    return false;
  }

  /** libuv took the oldest pending write (writes complete in order). */
  afterWrite(status: number, request: WriteRequest): void {
    request.handle = null;
    if (this.destroyed) return;
    if (status < 0) return void this.destroy(new RawSocketError(status, 'write'));
    if (--this.pendingWrites === 0) this.pendingBytes = 0;
    else this.pendingBytes = this._handle.writeQueueSize;
    this.activeAt = deadlineWheel.now;
    this.writeCallback?.();
  }

  end(): void {
    if (this.destroyed || this.writableEnded) return;
    this.writableEnded = true;
    // The peer's FIN is in and no write is pending: both directions end here, and close()
    // sends our FIN as shutdown() would (nothing unread, so no reset), without a shutdown
    // request and its callback. The kernel still delivers what it holds before the FIN.
    if (this.readableEnded && this.pendingWrites === 0) {
      this.writableFinished = true;
      return this.destroy();
    }
    const request = this.handles.newShutdown();
    request.oncomplete = onShutdownDone;
    request.handle = this._handle;
    const status = this._handle.shutdown(request);
    // As net.js: 1 (or ENOTCONN) means done at once.
    if (status === 1 || status === UV_ENOTCONN) this.finishedWriting();
    else if (status !== 0) this.destroy(new RawSocketError(status, 'shutdown'));
  }

  afterShutdown(status: number): void {
    if (this.destroyed) return;
    if (status < 0 && status !== UV_ENOTCONN) return void this.destroy(new RawSocketError(status, 'shutdown'));
    this.finishedWriting();
  }

  private finishedWriting(): void {
    this.writableFinished = true;
    this.closeIfDone();
  }

  /** Both directions over (our FIN sent, the peer's read): closed, as net.Socket's autoDestroy does. */
  private closeIfDone(): void {
    if (this.readableEnded && this.writableFinished) this.destroy();
  }

  resume(): void {
    if (this.reading || this.destroyed || this.readableEnded) return;
    const status = this._handle.readStart();
    if (status !== 0) return void this.destroy(new RawSocketError(status, 'read'));
    this.reading = true;
  }

  pause(): void {
    if (!this.reading) return;
    this.reading = false;
    if (!this.destroyed) this._handle.readStop();
  }

  isPaused(): boolean {
    return !this.reading && !this.readableEnded;
  }

  /** A read finished: bytes (the owner's callback answers whether to go on), EOF, or an error. */
  afterRead(result: number): void {
    if (result > 0) {
      this.bytesRead += result;
      this.activeAt = deadlineWheel.now;
      if (!this.readCallback!(result, this.buffer!)) this.pause();
      return;
    }
    if (result === 0 || this.destroyed) return;
    if (result !== UV_EOF) return void this.destroy(new RawSocketError(result, 'read'));
    // libuv stops reading at EOF by itself.
    this.reading = false;
    this.readableEnded = true;
    this.onEnd?.();
    this.closeIfDone();
  }

  /**
   * Closes the handle; 'close' follows on the next tick, after 'error' when there is one.
   * libuv closes the descriptor and stops reading inside uv_close(), so from then on it
   * touches none of our buffers (held writes are only cancelled): no need to wait for its
   * close callback, a native-to-JS call per socket.
   */
  destroy(error?: Error): void {
    if (this.destroyed) return;
    this.markDestroyed();
    this._handle.close();
    process.nextTick(emitClose, this);
    if (error !== undefined) this.onError?.(error);
  }

  resetAndDestroy(): void {
    if (this.destroyed) return;
    this.markDestroyed();
    if (this._handle.reset() !== 0) this._handle.close();
    process.nextTick(emitClose, this);
  }

  afterConnect(status: number): void {
    if (this.destroyed) return;
    this.connecting = false;
    if (status < 0) return void this.destroy(new RawSocketError(status, 'connect'));
    this.activeAt = deadlineWheel.now;
    this.onConnect?.();
  }

  afterClose(): void {
    // (onread stays: Node's setter takes functions only; onHandleRead finds no owner, nor
    // does the cancelled completion of a write libuv still held.)
    this._handle.owner = undefined;
    this.onClose?.();
  }

  /**
   * Inactivity timeout as net.Socket's: 'timeout' once nothing moved for `ms` (0: off).
   * Activity is stamped with the wheel's coarse clock (free, where Date.now() per read is
   * not), which may lag the true time by about one resolution: the silence is counted from
   * one resolution later, so a timeout never fires early, and at most about two late.
   */
  setTimeout(ms: number): void {
    this.timeoutMs = ms;
    if (ms === 0 || this.destroyed) return deadlineWheel.cancel(this);
    deadlineWheel.schedule(this, Date.now() + ms);
    this.activeAt = deadlineWheel.now;
  }

  deadlineReached(): void {
    if (this.timeoutMs === 0 || this.destroyed) return;
    const due = this.activeAt + this.timeoutMs + RESOLUTION_MS;
    // Activity since: the silence started later.
    if (due > deadlineWheel.now) return deadlineWheel.schedule(this, due);
    // As net.Socket's timer: not re-armed by itself.
    this.timeoutMs = 0;
    this.onTimeout?.();
  }

  on(event: 'timeout' | 'end' | 'close' | 'connect', listener: Listener): this;
  on(event: 'error', listener: ErrorListener): this;
  on(event: string, listener: Listener | ErrorListener): this {
    this.setListener(event, listener, listener);
    return this;
  }

  once(event: 'timeout' | 'end' | 'close' | 'connect', listener: Listener): this;
  once(event: 'error', listener: ErrorListener): this;
  /** Each event happens at most once per socket, except 'timeout', which the owner re-arms anyway. */
  once(event: string, listener: Listener | ErrorListener): this {
    this.setListener(event, listener, listener);
    return this;
  }

  off(event: 'timeout' | 'end' | 'close' | 'connect', listener: Listener): this;
  off(event: 'error', listener: ErrorListener): this;
  off(event: string, listener: Listener | ErrorListener): this {
    this.setListener(event, listener, undefined);
    return this;
  }

  /**
   * Exactly one listener per event: a second one would be a bug in the owner (whoever has the
   * socket listens), so it throws rather than silently replacing the first.
   */
  private setListener(event: string, listener: Listener | ErrorListener, value: Listener | ErrorListener | undefined): void {
    const key = LISTENER_FIELDS[event];
    if (key === undefined) throw new TypeError(`RawSocket has no '${event}' event`);
    const current = this[key];
    if (value === undefined) {
      if (current === listener) this[key] = undefined;
      return;
    }
    if (current !== undefined && current !== listener) throw new TcpProxyError('internal', `RawSocket: a second '${event}' listener`);
    (this as Record<typeof key, Listener | ErrorListener | undefined>)[key] = value;
  }

  /**
   * The same connection as a net.Socket, for a path that needs one (admission queue, filters
   * turned on meanwhile): only before anything was read or written, and with no listener yet.
   */
  toNetSocket(makeSocket: (handle: TcpHandle) => Socket): Socket {
    // net.Socket sets its own onread on the handle.
    this._handle.owner = undefined;
    this.markDestroyed();
    return makeSocket(this._handle);
  }

  private markDestroyed(): void {
    this.destroyed = true;
    this.reading = false;
    deadlineWheel.cancel(this);
  }

  private sockname(): SocketAddress {
    if (this.local === undefined && !this.destroyed) {
      const out: SocketAddress = {};
      if (this._handle.getsockname(out) === 0) this.local = out;
    }
    return this.local ?? {};
  }
}

const LISTENER_FIELDS: Record<string, 'onConnect' | 'onEnd' | 'onClose' | 'onTimeout' | 'onError' | undefined> = {
  connect: 'onConnect',
  end: 'onEnd',
  close: 'onClose',
  timeout: 'onTimeout',
  error: 'onError',
};

// -- the shared callbacks libuv calls (`this`: the handle or the request) ----------------

/** One write request reused for every write that completes at once (libuv keeps none of those). */
let spareWrite: WriteRequest | undefined;

function ownerOf(handle: TcpHandle): RawSocket | undefined {
  return handle.owner as RawSocket | undefined;
}

function onHandleRead(this: TcpHandle): void {
  const socket = ownerOf(this);
  socket?.afterRead(socket.handles.lastReadResult());
}

function onWriteDone(this: WriteRequest, status: number): void {
  const handle = this.handle;
  if (handle !== null) ownerOf(handle)?.afterWrite(status, this);
}

function onShutdownDone(this: ShutdownRequest, status: number): void {
  const handle = this.handle;
  this.handle = null;
  if (handle !== null) ownerOf(handle)?.afterShutdown(status);
}

function onConnectDone(this: unknown, status: number, handle: TcpHandle): void {
  ownerOf(handle)?.afterConnect(status);
}

function emitClose(socket: RawSocket): void {
  socket.afterClose();
}

function failConnect(socket: RawSocket, status: number): void {
  socket.afterConnect(status);
}
