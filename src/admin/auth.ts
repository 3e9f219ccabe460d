/**
 * Request guards: the optional bearer token, and a same-origin check on state-changing
 * requests so that a web page open in the operator's browser cannot POST to a loopback admin
 * endpoint behind their back (a cross-site form POST carries an Origin header naming the site).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export class BearerToken {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  /** Constant-time: both sides are compared as SHA-256 digests, so lengths never differ. */
  accepts(authorization: string | undefined): boolean {
    if (authorization === undefined) return false;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match === null) return false;
    return timingSafeEqual(sha256(match[1]!), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** True unless the request names an Origin whose host differs from the Host it was sent to. */
export function isSameOrigin(headers: IncomingHttpHeaders): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false;
  }
}
