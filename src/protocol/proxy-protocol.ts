/**
 * PROXY protocol (HAProxy's v1 text and v2 binary headers): the encoders for the header we
 * send upstream, and a strict streaming parser for the header a load balancer sends us.
 * Specification: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */
import type { Socket } from 'node:net';
import { ProxyProtocolError, type ParseStep, type ProxyAccept, type ProxyHeader } from './proxy-header.js';
import { parseV1 } from './proxy-v1.js';
import { parseV2, V2_DEFAULT_MAX_LENGTH, V2_PREAMBLE_LENGTH } from './proxy-v2.js';
import { readPrefix } from './read-prefix.js';
import { TcpProxyError } from '../errors/errors.js';

export {
  addressesFromSocket,
  ProxyProtocolError,
  type ProxyAccept,
  type ProxyAddresses,
  type ProxyEndpoint,
  type ProxyHeader,
  type ProxyTlv,
} from './proxy-header.js';
export { encodeV1, V1_MAX_LENGTH } from './proxy-v1.js';
export { encodeV2, V2_DEFAULT_MAX_LENGTH } from './proxy-v2.js';

export interface ProxyParserOptions {
  /** Largest v2 header accepted, preamble included (16 + declared length); default 2048. */
  maxV2Length?: number;
}

export type ProxyPushResult = { done: false } | { done: true; header: ProxyHeader; rest: Buffer };

const V1_FIRST_BYTE = 0x50; // 'P' of "PROXY "
const V2_FIRST_BYTE = 0x0d; // first byte of the binary signature
const NEED_MORE: ProxyPushResult = Object.freeze({ done: false });

/**
 * Feed it the connection's first chunks; it answers once the header is complete, with the
 * bytes after it (`rest`), or throws ProxyProtocolError as soon as the input cannot be a
 * valid header. The outcome is the same however the input is split into chunks.
 */
export class ProxyHeaderParser {
  readonly #accept: ProxyAccept;
  readonly #maxV2Length: number;
  #pending: Buffer | undefined;
  #finished = false;

  constructor(accept: ProxyAccept, options: ProxyParserOptions = {}) {
    const maxV2Length = options.maxV2Length ?? V2_DEFAULT_MAX_LENGTH;
    if (!Number.isInteger(maxV2Length) || maxV2Length < V2_PREAMBLE_LENGTH || maxV2Length > V2_PREAMBLE_LENGTH + 0xffff) {
      throw new RangeError(`maxV2Length must be an integer in [16, 65551], got ${maxV2Length}`);
    }
    this.#accept = accept;
    this.#maxV2Length = maxV2Length;
  }

  push(chunk: Buffer): ProxyPushResult {
    if (this.#finished) throw new TcpProxyError('internal', 'ProxyHeaderParser.push() after the header was complete or rejected');
    const buffer = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    let step: ParseStep;
    try {
      step = this.#parse(buffer);
    } catch (err) {
      this.#finished = true;
      this.#pending = undefined;
      throw err;
    }
    if (step === undefined) {
      this.#pending = buffer;
      return NEED_MORE;
    }
    this.#finished = true;
    this.#pending = undefined;
    return { done: true, header: step.header, rest: buffer.subarray(step.length) };
  }

  #parse(buffer: Buffer): ParseStep {
    if (buffer.length === 0) return undefined;
    // The first byte tells the versions apart: "PROXY" vs "\r\n\r\n\0...".
    const first = buffer[0];
    if (first === V1_FIRST_BYTE && this.#accept !== 'v2') return parseV1(buffer);
    if (first === V2_FIRST_BYTE && this.#accept !== 'v1') return parseV2(buffer, this.#maxV2Length);
    const expected = this.#accept === 'any' ? 'PROXY protocol' : `PROXY protocol ${this.#accept}`;
    throw new ProxyProtocolError(`missing ${expected} header`);
  }
}

/**
 * Reads the PROXY header from a paused socket (accept it with `pauseOnConnect`). Resolves
 * with the header and the client bytes that followed it in the same read (`rest`: forward
 * them first, or `socket.unshift(rest)` before wrapping the socket in TLS); rejects with
 * ProxyProtocolError on a bad, too long, incomplete (early close) or slow (`timeoutMs`)
 * header, or with the socket's own error. Leaves no listener behind and the socket paused.
 */
export function readProxyHeader(
  socket: Socket,
  accept: ProxyAccept,
  timeoutMs: number,
  options: ProxyParserOptions = {},
): Promise<{ header: ProxyHeader; rest: Buffer }> {
  const parser = new ProxyHeaderParser(accept, options);
  return readPrefix(socket, timeoutMs, {
    subject: 'PROXY protocol header',
    consume: (chunk) => {
      const result = parser.push(chunk);
      return result.done ? { header: result.header, rest: result.rest } : undefined;
    },
    fail: (message) => new ProxyProtocolError(message),
  });
}
