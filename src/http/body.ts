/** Reading a request body as text, bounded: the admin API's and the toxiproxy API's. */
import type { IncomingMessage } from 'node:http';
import { TcpProxyError } from '../errors/errors.js';

export class BodyTooLargeError extends TcpProxyError {
  constructor(readonly limit: number) {
    super('body_too_large', `request body larger than ${limit} bytes`);
  }
}

/** Rejects with a BodyTooLargeError past `limit` bytes (by Content-Length, or as it arrives). */
export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new BodyTooLargeError(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLargeError(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
