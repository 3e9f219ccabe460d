/**
 * The one module that touches Node's undocumented TCP internals: the libuv TCP handles of
 * `process.binding('tcp_wrap')` and the request objects of `process.binding('stream_wrap')`,
 * which net.Socket itself is built on (lib/net.js, lib/internal/stream_base_commons.js).
 *
 * Why: a plain proxied connection needs none of net.Socket's Readable/Writable machinery;
 * driving the two handles directly halves the CPU spent per connection (raw-socket.ts).
 *
 * Everything here is checked once at load (`probe()`): the bindings exist, have the
 * functions used, and a handle can be created and closed. When anything is missing, or
 * TCPPROXY_RAW_HANDLES=0 is set, `tcpHandles` is undefined and every connection runs on
 * net.Socket as before. test/proxy/tcp-handle.test.ts checks every operation on the Node
 * version in use.
 */

/** A libuv TCP handle (TCPWrap), as far as this proxy uses it. */
export interface TcpHandle {
  /** Called with `this` = the handle; the bytes count is in `streamBaseState[kReadBytesOrError]`. */
  /** Node's setter accepts functions only. */
  onread: (this: TcpHandle) => void;
  /** Bytes libuv still holds from writes not yet taken by the kernel. */
  readonly writeQueueSize: number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(request: WriteRequest, buffer: Uint8Array): number;
  shutdown(request: ShutdownRequest): number;
  connect(request: ConnectRequest, address: string, port: number): number;
  connect6(request: ConnectRequest, address: string, port: number): number;
  getpeername(out: SocketAddress): number;
  getsockname(out: SocketAddress): number;
  setNoDelay(on: boolean): number;
  /** Closes with an RST (uv_tcp_close_reset); fails (non-zero) while a shutdown is pending. The callback is optional. */
  reset(onClose?: (this: TcpHandle) => void): number;
  close(onClose?: (this: TcpHandle) => void): void;
  /** The owner (raw-socket.ts) is found from the handle in the shared callbacks: no closure per handle. */
  owner?: unknown;
}

export interface SocketAddress {
  address?: string;
  port?: number;
  family?: string;
}

/** Request objects: libuv completes them by calling `oncomplete` (`this` = the request). */
export interface WriteRequest {
  handle: TcpHandle | null;
  oncomplete: ((this: WriteRequest, status: number) => void) | null;
}
export interface ShutdownRequest {
  handle: TcpHandle | null;
  oncomplete: ((this: ShutdownRequest, status: number) => void) | null;
}
export interface ConnectRequest {
  oncomplete: ((this: ConnectRequest, status: number, handle: TcpHandle) => void) | null;
}

/** The server handle net.Server listens on (or, in a cluster worker, its round-robin stand-in). */
export interface ServerHandle {
  onconnection: (this: ServerHandle, status: number, client: TcpHandle | undefined) => void;
}

export interface TcpHandles {
  newTcp(): TcpHandle;
  newWrite(): WriteRequest;
  newShutdown(): ShutdownRequest;
  newConnect(): ConnectRequest;
  /** How the last read ended: > 0 bytes, 0 nothing (try again), UV_EOF, or a negative errno. */
  lastReadResult(): number;
  /** After writeBuffer(): whether libuv kept the write (it completes through `oncomplete`). */
  lastWriteWasAsync(): boolean;
}

/** libuv's end-of-stream code. */
export const UV_EOF = -4095;

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectRequest;
  constants: { SOCKET: number };
}
interface StreamWrapBinding {
  WriteWrap: new () => WriteRequest;
  ShutdownWrap: new () => ShutdownRequest;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const HANDLE_METHODS = [
  'readStart',
  'readStop',
  'useUserBuffer',
  'writeBuffer',
  'shutdown',
  'connect',
  'connect6',
  'getpeername',
  'getsockname',
  'setNoDelay',
  'reset',
  'close',
] as const;

/** The internals, or why they cannot be used (for the startup log and the tests). */
export function probe(env: NodeJS.ProcessEnv = process.env): TcpHandles | string {
  if (env.TCPPROXY_RAW_HANDLES === '0') return 'disabled by TCPPROXY_RAW_HANDLES=0';
  try {
    // process.binding is deprecated (DEP0111) but allow-listed for these two modules in Node 20.
    const internal = process as unknown as { binding(name: string): unknown };
    const tcp = internal.binding('tcp_wrap') as TcpWrapBinding;
    const stream = internal.binding('stream_wrap') as StreamWrapBinding;
    if (typeof tcp.TCP !== 'function' || typeof tcp.TCPConnectWrap !== 'function' || typeof tcp.constants?.SOCKET !== 'number')
      return 'tcp_wrap lacks TCP/TCPConnectWrap';
    if (typeof stream.WriteWrap !== 'function' || typeof stream.ShutdownWrap !== 'function') return 'stream_wrap lacks WriteWrap/ShutdownWrap';
    const state = stream.streamBaseState;
    const { kReadBytesOrError: readIndex, kLastWriteWasAsync: asyncIndex } = stream;
    if (!(state instanceof Int32Array) || !Number.isInteger(readIndex) || !Number.isInteger(asyncIndex)) return 'stream_wrap lacks streamBaseState';
    const { TCP, TCPConnectWrap, constants } = tcp;
    const { WriteWrap, ShutdownWrap } = stream;
    const sample = new TCP(constants.SOCKET);
    const missing = HANDLE_METHODS.filter((name) => typeof sample[name] !== 'function');
    sample.close();
    if (missing.length > 0) return `TCP handle lacks ${missing.join(', ')}`;
    return {
      newTcp: () => new TCP(constants.SOCKET),
      newWrite: () => new WriteWrap(),
      newShutdown: () => new ShutdownWrap(),
      newConnect: () => new TCPConnectWrap(),
      lastReadResult: () => state[readIndex]!,
      lastWriteWasAsync: () => state[asyncIndex] !== 0,
    };
  } catch (error) {
    return `Node internals unavailable: ${(error as Error).message}`;
  }
}

const probed = probe();

/** The internals when the fast path is on; undefined: everything on net.Socket. */
export const tcpHandles: TcpHandles | undefined = typeof probed === 'string' ? undefined : probed;
/** Why the fast path is off (undefined when on). */
export const tcpHandlesOff: string | undefined = typeof probed === 'string' ? probed : undefined;
