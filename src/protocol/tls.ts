/**
 * TLS settings from configuration to node:tls options: certificate files read and checked
 * once (at start and on each reload), so a bad file is a clear configuration error naming
 * the file instead of a handshake failure later, and so every connection reuses one
 * SecureContext instead of parsing PEM files per connection.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import tls from 'node:tls';
import { TcpProxyError } from '../errors/errors.js';

/** The listener's `tls` block: terminate TLS from clients. */
export interface TlsServerSpec {
  cert: string;
  key: string;
  /** CA bundle for client certificates: when set, clients are asked for one. */
  ca?: string;
  /** With `ca`: refuse clients without a certificate valid under `ca` (default true). */
  requireClientCert?: boolean;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** The `upstream_tls` block: originate TLS to the upstreams. */
export interface TlsClientSpec {
  /** CA bundle for the upstreams' certificates; default: Node's bundled Mozilla roots. */
  ca?: string;
  /** SNI and the name the certificate must match; default: the upstream host. */
  servername?: string;
  verify: boolean;
  cert?: string;
  key?: string;
}

/** Usable as `tls.createServer(options)`, `server.setSecureContext(options)` or `new tls.TLSSocket(socket, { isServer: true, ...options })`. */
export type ServerTlsOptions = tls.TlsOptions & { secureContext: tls.SecureContext };

/** Spread into `tls.connect({ ...options, host, port })` or `{ ...options, socket }`. */
export type ClientTlsOptions = tls.ConnectionOptions & { secureContext: tls.SecureContext; rejectUnauthorized: boolean };

/** A TLS setting that cannot be used; `key` is the offending key of the tls block ("cert", "ca", ...). */
export class TlsConfigError extends TcpProxyError {
  constructor(
    message: string,
    readonly key: string,
    readonly file?: string,
  ) {
    super('tls_config', message);
  }
}

type PemKind = 'certificate' | 'private key';
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

export function loadServerContext(spec: TlsServerSpec, baseDir: string): ServerTlsOptions {
  const requireClientCert = spec.requireClientCert ?? spec.ca !== undefined;
  if (requireClientCert && spec.ca === undefined) {
    throw new TlsConfigError('require_client_cert needs a ca to verify client certificates against', 'require_client_cert');
  }
  const { options, secureContext } = loadContext(spec, baseDir, { minVersion: spec.minVersion ?? 'TLSv1.2' });
  // requestCert without rejectUnauthorized: an optional client certificate, whose
  // verification result the caller finds in socket.authorized (see tlsSessionInfo).
  return { ...options, secureContext, requestCert: spec.ca !== undefined, rejectUnauthorized: requireClientCert };
}

export function loadClientOptions(spec: TlsClientSpec, baseDir: string): ClientTlsOptions {
  if ((spec.cert === undefined) !== (spec.key === undefined)) {
    throw new TlsConfigError('cert and key must be given together', spec.cert === undefined ? 'cert' : 'key');
  }
  const { secureContext } = loadContext(spec, baseDir, {});
  const result: ClientTlsOptions = { secureContext, rejectUnauthorized: spec.verify };
  if (spec.servername !== undefined) result.servername = spec.servername;
  return result;
}

/**
 * Reads the PEM files present in `files` and builds the context now, so that an unreadable
 * file, a broken certificate or a key not matching its certificate is a load-time error.
 */
function loadContext(
  files: { cert?: string | undefined; key?: string | undefined; ca?: string | undefined },
  baseDir: string,
  base: tls.SecureContextOptions,
): { options: tls.SecureContextOptions; secureContext: tls.SecureContext } {
  const options: tls.SecureContextOptions = { ...base };
  if (files.ca !== undefined) options.ca = readPem(resolve(baseDir, files.ca), 'ca', 'certificate');
  if (files.cert !== undefined && files.key !== undefined) {
    const certPath = resolve(baseDir, files.cert);
    const keyPath = resolve(baseDir, files.key);
    options.cert = readPem(certPath, 'cert', 'certificate');
    options.key = readPem(keyPath, 'key', 'private key');
    return { options, secureContext: createContext(options, 'key', `certificate "${certPath}" with key "${keyPath}"`, keyPath) };
  }
  return { options, secureContext: createContext(options, 'ca', 'the TLS settings') };
}

function readPem(path: string, key: string, kind: PemKind): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TlsConfigError(`cannot read ${kind} file "${path}" (${reason})`, key, path);
  }
  // OpenSSL's "no start line" would not say which file; "PRIVATE KEY" covers PKCS#8, RSA and EC keys.
  const label = kind === 'certificate' ? '-----BEGIN CERTIFICATE-----' : 'PRIVATE KEY-----';
  if (!content.includes(label)) throw new TlsConfigError(`"${path}" is not a PEM ${kind}`, key, path);
  if (kind === 'certificate') checkCertificates(content, path, key);
  return content;
}

/** OpenSSL skips unparsable entries of a CA bundle silently: parse each one to say which. */
function checkCertificates(content: Buffer, path: string, key: string): void {
  const blocks = content.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  blocks.forEach((block, index) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new TlsConfigError(`certificate #${index + 1} in "${path}" cannot be parsed (${(err as Error).message})`, key, path);
    }
  });
}

function createContext(options: tls.SecureContextOptions, key: string, what: string, file?: string): tls.SecureContext {
  try {
    return tls.createSecureContext(options);
  } catch (err) {
    throw new TlsConfigError(`cannot use ${what}: ${(err as Error).message}`, key, file);
  }
}

/** What the access log records of a terminated TLS session (`tls: { version, sni, ... }`), log-ready (snake_case). */
export interface TlsSessionInfo {
  version: string | undefined;
  sni: string | undefined;
  cipher: string | undefined;
  /** none: no client certificate; verified / unverified against the configured ca. */
  client_cert: 'none' | 'verified' | 'unverified';
}

export function tlsSessionInfo(socket: tls.TLSSocket): TlsSessionInfo {
  const peer = socket.getPeerCertificate();
  const hasPeerCert = peer !== null && Object.keys(peer).length > 0;
  return {
    version: socket.getProtocol() ?? undefined,
    sni: typeof socket.servername === 'string' ? socket.servername : undefined,
    cipher: socket.getCipher()?.name,
    client_cert: !hasPeerCert ? 'none' : socket.authorized ? 'verified' : 'unverified',
  };
}
