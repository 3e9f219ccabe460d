/**
 * SNI routing without terminating TLS: peek at the client's first flight, find the
 * server_name in its ClientHello, and leave every byte to be forwarded untouched.
 * Formats: TLS records (RFC 8446 section 5.1), ClientHello (4.1.2), server_name (RFC 6066 section 3).
 */
import type { Socket } from 'node:net';
import { readPrefix } from './read-prefix.js';
import { TcpProxyError } from '../errors/errors.js';

export type ServerNamePeek = { state: 'need-more' } | { state: 'done'; serverName: string | undefined } | { state: 'not-tls'; reason: string };

export interface ClientHello {
  /** Lower-cased server_name; undefined without SNI, with an unusable name, or when not TLS. */
  serverName: string | undefined;
  /** Every byte read from the socket: forward them to the upstream before anything else. */
  buffered: Buffer;
  /** False when the bytes were not a TLS ClientHello (or none fit in maxBytes): `reason` says why. */
  tls: boolean;
  reason?: string;
}

export class ClientHelloError extends TcpProxyError {
  constructor(message: string) {
    super('client_hello', message);
  }
}

/** Largest ClientHello handshake message considered (real ones are well under 2 KiB). */
export const MAX_CLIENT_HELLO_LENGTH = 16 * 1024;
/** Default read budget: the largest ClientHello plus room for the record headers around it. */
export const DEFAULT_CLIENT_HELLO_READ_LIMIT = MAX_CLIENT_HELLO_LENGTH + 1024;

const RECORD_HEADER_LENGTH = 5;
const MAX_RECORD_LENGTH = 16 * 1024;
const CONTENT_TYPE_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const HANDSHAKE_HEADER_LENGTH = 4;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST_NAME = 0;
const MAX_HOST_NAME_LENGTH = 253;
const HOST_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;
const NEED_MORE: ServerNamePeek = Object.freeze({ state: 'need-more' });

/**
 * Looks for a complete ClientHello at the start of `buffer`, which may span several
 * handshake records. Bounded (at most MAX_CLIENT_HELLO_LENGTH bytes are parsed) and total:
 * garbage yields 'not-tls', never an exception.
 */
export function peekServerName(buffer: Buffer): ServerNamePeek {
  const hello = collectClientHello(buffer);
  return Buffer.isBuffer(hello) ? parseClientHello(hello) : hello;
}

/** Reassembles the ClientHello message from the handshake records that carry it. */
function collectClientHello(buffer: Buffer): Buffer | ServerNamePeek {
  const fragments: Buffer[] = [];
  let collected = 0;
  let messageLength = -1;
  let offset = 0;
  for (;;) {
    const available = buffer.length - offset;
    if (available >= 1 && buffer[offset] !== CONTENT_TYPE_HANDSHAKE) return notTls('not a TLS handshake record');
    if (available >= 2 && buffer[offset + 1] !== 3) return notTls('not a TLS record version');
    if (available < RECORD_HEADER_LENGTH) return NEED_MORE;
    const recordLength = buffer.readUInt16BE(offset + 3);
    // Handshake records are never empty (RFC 8446 5.1) and never above 2^14 bytes.
    if (recordLength === 0 || recordLength > MAX_RECORD_LENGTH) return notTls('invalid TLS record length');
    const start = offset + RECORD_HEADER_LENGTH;
    const fragment = buffer.subarray(start, start + recordLength);
    fragments.push(fragment);
    collected += fragment.length;
    if (collected > 0 && fragments[0]![0] !== HANDSHAKE_CLIENT_HELLO) return notTls('first handshake message is not a ClientHello');
    if (messageLength < 0 && collected >= HANDSHAKE_HEADER_LENGTH) {
      const head = fragments.length === 1 ? fragment : Buffer.concat(fragments, HANDSHAKE_HEADER_LENGTH);
      messageLength = HANDSHAKE_HEADER_LENGTH + head.readUIntBE(1, 3);
      if (messageLength > MAX_CLIENT_HELLO_LENGTH) return notTls(`ClientHello larger than ${MAX_CLIENT_HELLO_LENGTH} bytes`);
    }
    if (messageLength >= 0 && collected >= messageLength) {
      return fragments.length === 1 ? fragment.subarray(0, messageLength) : Buffer.concat(fragments, messageLength);
    }
    if (fragment.length < recordLength) return NEED_MORE;
    offset = start + recordLength;
  }
}

/** Walks the ClientHello's fields with bounds checks; the message length is exact. */
function parseClientHello(hello: Buffer): ServerNamePeek {
  const end = hello.length;
  let at = HANDSHAKE_HEADER_LENGTH;
  // legacy_version (major 3) and the 32-byte random
  if (end - at < 34 || hello[at] !== 3) return malformed();
  at += 34;
  at = skipVector(hello, at, 1, 0, 32); // legacy_session_id
  if (at < 0) return malformed();
  const suitesAt = at;
  at = skipVector(hello, at, 2, 2, 0xfffe); // cipher_suites, 2 bytes each
  if (at < 0 || (at - suitesAt) % 2 !== 0) return malformed();
  at = skipVector(hello, at, 1, 1, 0xff); // legacy_compression_methods
  if (at < 0) return malformed();
  if (at === end) return { state: 'done', serverName: undefined }; // no extensions at all
  if (end - at < 2 || at + 2 + hello.readUInt16BE(at) !== end) return malformed();
  at += 2;
  let serverName: string | undefined;
  let sawServerName = false;
  while (at < end) {
    if (end - at < 4) return malformed();
    const type = hello.readUInt16BE(at);
    const dataEnd = at + 4 + hello.readUInt16BE(at + 2);
    if (dataEnd > end) return malformed();
    if (type === EXTENSION_SERVER_NAME) {
      // One extension of a type at most (RFC 8446 4.2): a second server_name is an attack or a bug.
      if (sawServerName) return malformed();
      sawServerName = true;
      const name = parseServerNameExtension(hello, at + 4, dataEnd);
      if (name === null) return malformed();
      serverName = name;
    }
    at = dataEnd;
  }
  return { state: 'done', serverName };
}

/** The first host_name, lower-cased; undefined when absent or not a DNS name; null when malformed. */
function parseServerNameExtension(hello: Buffer, start: number, end: number): string | undefined | null {
  if (end - start < 2 || start + 2 + hello.readUInt16BE(start) !== end) return null;
  let hostName: Buffer | undefined;
  for (let at = start + 2; at < end;) {
    if (end - at < 3) return null;
    const nameEnd = at + 3 + hello.readUInt16BE(at + 1);
    if (nameEnd > end) return null;
    if (hello[at] === NAME_TYPE_HOST_NAME && hostName === undefined) hostName = hello.subarray(at + 3, nameEnd);
    at = nameEnd;
  }
  if (hostName === undefined || hostName.length === 0 || hostName.length > MAX_HOST_NAME_LENGTH) return undefined;
  const name = hostName.toString('latin1').toLowerCase();
  return HOST_NAME.test(name) ? name : undefined;
}

/** Position after a length-prefixed vector whose length is within [min, max]; -1 when it does not fit. */
function skipVector(buffer: Buffer, at: number, lengthBytes: 1 | 2, min: number, max: number): number {
  if (buffer.length - at < lengthBytes) return -1;
  const length = lengthBytes === 1 ? buffer[at]! : buffer.readUInt16BE(at);
  const next = at + lengthBytes + length;
  return length < min || length > max || next > buffer.length ? -1 : next;
}

function notTls(reason: string): ServerNamePeek {
  return { state: 'not-tls', reason };
}

function malformed(): ServerNamePeek {
  return notTls('malformed ClientHello');
}

/**
 * Reads the client's first flight from a paused socket until its ClientHello is complete,
 * the bytes are clearly not TLS, or `maxBytes` were read without a complete ClientHello
 * (both resolve with `tls: false`). Rejects with ClientHelloError on timeout or early close,
 * or with the socket's error. Leaves no listener behind and the socket paused.
 */
export function readClientHello(socket: Socket, timeoutMs: number, maxBytes: number = DEFAULT_CLIENT_HELLO_READ_LIMIT): Promise<ClientHello> {
  let buffered: Buffer | undefined;
  return readPrefix(socket, timeoutMs, {
    subject: 'TLS ClientHello',
    consume: (chunk): ClientHello | undefined => {
      buffered = buffered === undefined ? chunk : Buffer.concat([buffered, chunk]);
      const peek = peekServerName(buffered);
      if (peek.state === 'done') return { serverName: peek.serverName, buffered, tls: true };
      if (peek.state === 'not-tls') return { serverName: undefined, buffered, tls: false, reason: peek.reason };
      if (buffered.length >= maxBytes) {
        return { serverName: undefined, buffered, tls: false, reason: `no complete ClientHello in the first ${maxBytes} bytes` };
      }
      return undefined;
    },
    fail: (message) => new ClientHelloError(message),
  });
}

/**
 * Route matching: "*.example.com" matches exactly one extra label ("a.example.com", not
 * "example.com" nor "a.b.example.com"); any other pattern is an exact name. Both ignore case.
 */
export function matchServerName(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern.length === name.length && pattern.toLowerCase() === name.toLowerCase();
  const suffix = pattern.slice(1); // ".example.com"
  const labelLength = name.length - suffix.length;
  if (labelLength < 1 || name.slice(labelLength).toLowerCase() !== suffix.toLowerCase()) return false;
  return !name.slice(0, labelLength).includes('.');
}
