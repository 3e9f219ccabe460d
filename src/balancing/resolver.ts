import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Name resolution as the pool needs it; injectable so tests can make addresses come and go. */
export type Lookup = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), as a connect would use it. */
export const systemLookup: Lookup = (hostname) => dns.lookup(hostname, { all: true });

/** "[::1]" -> "::1": hosts may arrive in the bracketed form of the HOST:PORT syntax. */
export function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

export function isIpLiteral(host: string): boolean {
  return isIP(bareHost(host)) !== 0;
}

/** The distinct IPs a configured host stands for, in resolver order; IP literals skip DNS. */
export async function resolveHost(host: string, lookup: Lookup): Promise<string[]> {
  const bare = bareHost(host);
  if (isIP(bare) !== 0) return [bare];
  const records = await lookup(bare);
  return [...new Set(records.map((record) => record.address))];
}
