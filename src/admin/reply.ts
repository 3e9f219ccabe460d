/** What a route handler answers; the server writes it. Keeping handlers free of `res` makes them plain functions. */
import type { ErrorCode, SystemErrorCode } from '../errors/errors.js';
export interface Reply {
  status: number;
  contentType: string;
  /** Text, or bytes (a capture file). */
  body: string | Buffer;
  headers?: Record<string, string>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

export function jsonReply(status: number, value: unknown): Reply {
  return { status, contentType: JSON_TYPE, body: `${JSON.stringify(value)}\n` };
}

export function textReply(status: number, body: string): Reply {
  return { status, contentType: TEXT_TYPE, body: `${body}\n` };
}

/** The admin API's code for a refusal that has no more precise one: by HTTP status. */
const CODE_BY_STATUS: Readonly<Record<number, ErrorCode>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'body_too_large',
  415: 'unsupported_media_type',
  501: 'not_implemented',
};

/** `{ error, code }`: `error` says what is wrong (for people), `code` is stable (README "Error codes"). */
export function errorReply(status: number, error: string, code: ErrorCode | SystemErrorCode = CODE_BY_STATUS[status] ?? 'internal'): Reply {
  return jsonReply(status, { error, code });
}
