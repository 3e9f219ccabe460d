/**
 * The `log.syslog` key: where RFC 5424 messages go and how they are labelled.
 *
 *   address: udp://HOST:PORT | tcp://HOST:PORT | unix:/PATH   (a unix *stream* socket)
 *   facility: local0            # RFC 5424 facility name
 *   app_name: tcpproxy
 *   framing: octet_counting     # tcp and unix: octet_counting (RFC 6587 3.4.1) | newline
 */
import { z } from 'zod';
import { parseHostPort } from '../net/address.js';

/** RFC 5424 section 6.2.1, in code order. */
export const FACILITIES = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'authpriv',
  'ftp',
  'ntp',
  'security',
  'console',
  'solaris-cron',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
] as const;

export type SyslogAddress =
  { readonly transport: 'udp' | 'tcp'; readonly host: string; readonly port: number } | { readonly transport: 'unix'; readonly path: string };

const address = z.string().transform((text, ctx): SyslogAddress => {
  const unix = /^unix:(.+)$/.exec(text);
  if (unix) return { transport: 'unix', path: unix[1]!.replace(/^\/\/(?=\/)/, '') };
  const network = /^(udp|tcp):\/\/(.+)$/.exec(text);
  if (!network) {
    ctx.addIssue({ code: 'custom', message: `expected udp://HOST:PORT, tcp://HOST:PORT or unix:/PATH, got ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  const parsed = parseHostPort(network[2]!);
  if (typeof parsed === 'string') {
    ctx.addIssue({ code: 'custom', message: parsed });
    return z.NEVER;
  }
  return { transport: network[1] as 'udp' | 'tcp', ...parsed };
});

export const syslogSchema = z.strictObject({
  address,
  facility: z.enum(FACILITIES).default('local0'),
  // RFC 5424 APP-NAME: printable US-ASCII, no space, at most 48 characters.
  app_name: z
    .string()
    .regex(/^[!-~]{1,48}$/, 'expected 1 to 48 printable ASCII characters without spaces')
    .default('tcpproxy'),
  framing: z.enum(['octet_counting', 'newline']).default('octet_counting'),
});

export type SyslogConfig = z.output<typeof syslogSchema>;
