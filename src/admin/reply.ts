/** What a route handler answers; the server writes it. Keeping handlers free of `res` makes them plain functions. */
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

export function errorReply(status: number, error: string): Reply {
  return jsonReply(status, { error });
}
