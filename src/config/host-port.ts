/** `HOST:PORT` parsing shared by listeners, upstreams and the admin endpoint. */
import { isIP } from 'node:net';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,62})(?:\.[a-zA-Z0-9_](?:[a-zA-Z0-9_-]{0,62}))*\.?$/;

/**
 * Parses `1.2.3.4:80`, `[::1]:80` or `name:80`. Returns a message saying what is wrong
 * instead of throwing, so that the schema can attach it to the right key path.
 */
export function parseHostPort(text: string, { allowPortZero = false } = {}): HostPort | string {
  const expected = `expected HOST:PORT, got ${JSON.stringify(text)}`;
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return expected;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) return `expected an IPv6 address inside brackets, got ${JSON.stringify(text)}`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return expected;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return `IPv6 addresses need brackets ([::1]:PORT), got ${JSON.stringify(text)}`;
    if (isIP(host) !== 4 && !HOSTNAME.test(host)) return `invalid host in ${JSON.stringify(text)}`;
  }
  if (!/^\d{1,5}$/.test(portText)) return expected;
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !allowPortZero)) return `port out of range in ${JSON.stringify(text)}`;
  return { host, port };
}

/** The canonical "ip:port" label, brackets around IPv6 (what logs and metrics show). */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
