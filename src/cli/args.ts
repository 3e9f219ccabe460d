/**
 * Command-line parsing (node:util parseArgs, strict): the seed's 4-argument form,
 * `--listen/--upstream` with flags that mirror config keys, `--config FILE [--check]`,
 * and `demo`. Flags become the same raw config object a file would give, so one schema
 * validates both; errors found there are reported under the flag's name.
 */
import { parseArgs } from 'node:util';
import { isIP } from 'node:net';
import type { RawConfig } from '../config/schema.js';

export class UsageError extends Error {}

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'demo'; options: DemoOptions }
  | { kind: 'toxiproxy-server'; host: string; port: number; configFile?: string; logLevel?: string }
  | { kind: 'run'; configFile?: string; raw?: RawConfig; check: boolean; overrides: GlobalOverrides };

export interface DemoOptions {
  readonly listenPort: number;
  readonly adminPort: number;
  readonly echoServers: number;
}

/** Flags that apply on top of a config file as well. */
export interface GlobalOverrides {
  logLevel?: string;
  logFormat?: string;
  admin?: string;
  workers?: string;
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  check: { type: 'boolean' },
  listen: { type: 'string', short: 'l' },
  upstream: { type: 'string', short: 'u', multiple: true },
  balance: { type: 'string' },
  'max-connections': { type: 'string' },
  'max-connections-per-ip': { type: 'string' },
  'on-limit': { type: 'string' },
  'queue-timeout': { type: 'string' },
  allow: { type: 'string', multiple: true },
  deny: { type: 'string', multiple: true },
  'connect-timeout': { type: 'string' },
  'connect-retries': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-lifetime': { type: 'string' },
  'buffer-size': { type: 'string' },
  'health-check-interval': { type: 'string' },
  'proxy-protocol': { type: 'string' },
  'log-data': { type: 'string' },
  capture: { type: 'string' },
  admin: { type: 'string' },
  'admin-token': { type: 'string' },
  workers: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  port: { type: 'string' },
  'admin-port': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Flags that shape a listener: they need --listen (or the 4-argument form), not --config. */
const LISTENER_FLAGS = [
  'balance', 'max-connections', 'max-connections-per-ip', 'on-limit', 'queue-timeout', 'allow', 'deny',
  'connect-timeout', 'connect-retries', 'idle-timeout', 'max-lifetime', 'buffer-size', 'health-check-interval',
  'proxy-protocol', 'log-data', 'capture',
] as const;

export function parseCommandLine(argv: readonly string[]): Command {
  if (argv[0] === 'toxiproxy-server') return parseToxiproxyServer(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0]!.replace(/\. To specify a positional.*$/, ''));
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const overrides: GlobalOverrides = {
    ...(values['log-level'] !== undefined && { logLevel: values['log-level'] }),
    ...(values['log-format'] !== undefined && { logFormat: values['log-format'] }),
    ...(values.admin !== undefined && { admin: values.admin }),
    ...(values.workers !== undefined && { workers: values.workers }),
  };

  if (positionals[0] === 'demo') {
    if (positionals.length > 1) throw new UsageError(`demo: unexpected argument "${positionals[1]}"`);
    return {
      kind: 'demo',
      options: {
        listenPort: port('--port', values.port ?? '8080'),
        adminPort: port('--admin-port', values['admin-port'] ?? '9901'),
        echoServers: 2,
      },
    };
  }
  for (const flag of ['port', 'admin-port'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} is an option of "tcpproxy demo"`);
  }

  if (values.config !== undefined) {
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}" with --config`);
    for (const flag of [...LISTENER_FLAGS, 'listen', 'upstream'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} cannot be combined with --config (set it in the file)`);
    }
    return { kind: 'run', configFile: values.config, check: values.check === true, overrides };
  }

  let listen = values.listen;
  let upstreams = values.upstream ?? [];
  if (positionals.length > 0) {
    if (positionals.length !== 4) {
      throw new UsageError(`expected <local-host> <local-port> <forward-host> <forward-port>, got ${positionals.length} argument(s)`);
    }
    if (listen !== undefined || upstreams.length > 0) throw new UsageError('use either the 4-argument form or --listen/--upstream, not both');
    const [localHost, localPort, forwardHost, forwardPort] = positionals as [string, string, string, string];
    listen = joinHostPort(localHost, localPort);
    upstreams = [joinHostPort(forwardHost, forwardPort)];
  }
  if (listen === undefined) throw new UsageError('nothing to do: give --listen and --upstream, the 4-argument form, --config FILE, or "demo" (see --help)');
  if (upstreams.length === 0) throw new UsageError('--upstream: at least one is required');

  const listener: Record<string, unknown> = { listen, upstreams };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) listener[key] = value;
  };
  set('balance', values.balance);
  set('max_connections', integer('--max-connections', values['max-connections']));
  set('max_connections_per_ip', integer('--max-connections-per-ip', values['max-connections-per-ip']));
  set('on_limit', values['on-limit']);
  set('queue_timeout', values['queue-timeout']);
  set('connect_timeout', values['connect-timeout']);
  set('connect_retries', integer('--connect-retries', values['connect-retries'], 0));
  set('idle_timeout', values['idle-timeout']);
  set('max_lifetime', values['max-lifetime']);
  set('buffer_size', values['buffer-size']);
  if (values.allow || values.deny) listener.access = { ...(values.allow && { allow: values.allow }), ...(values.deny && { deny: values.deny }) };
  if (values['health-check-interval'] !== undefined) listener.health_check = { interval: values['health-check-interval'] };
  if (values['proxy-protocol'] !== undefined) listener.proxy_protocol = { send: values['proxy-protocol'] };
  if (values['log-data'] !== undefined || values.capture !== undefined) {
    listener.inspect = { ...(values['log-data'] && { log_data: values['log-data'] }), ...(values.capture && { capture: values.capture }) };
  }
  const raw: Record<string, unknown> = { listeners: [listener] };
  if (values['admin-token'] !== undefined) raw.admin = { token: values['admin-token'] };
  return { kind: 'run', raw: raw as RawConfig, check: values.check === true, overrides };
}

/**
 * `toxiproxy-server [--host H] [--port P] [--config FILE] [--log-level L]`. The Go server's
 * single-dash forms (`-host`, `-port`, `-config`) are accepted too, and `--flag=value`.
 */
function parseToxiproxyServer(args: readonly string[]): Command {
  const values: Record<string, string> = {};
  const known = ['host', 'port', 'config', 'log-level'];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const match = /^--?([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (match?.[1] === 'help' || arg === '-h') return { kind: 'help' };
    if (!match || !known.includes(match[1]!)) throw new UsageError(`toxiproxy-server: unknown option "${arg}" (expected --host, --port, --config or --log-level)`);
    const value = match[2] ?? args[++i];
    if (value === undefined) throw new UsageError(`toxiproxy-server: --${match[1]} needs a value`);
    values[match[1]!] = value;
  }
  return {
    kind: 'toxiproxy-server',
    host: values.host ?? 'localhost',
    port: port('--port', values.port ?? '8474'),
    ...(values.config !== undefined && { configFile: values.config }),
    ...(values['log-level'] !== undefined && { logLevel: values['log-level'] }),
  };
}

/** Maps a key path of a CLI-built config back to the flag that set it. */
export function flagForKeyPath(path: string): string {
  const match = /^listeners\[0\]\.([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+))?/.exec(path);
  if (!match) return path;
  const [, key, index, sub] = match;
  if (key === 'upstreams') return index !== undefined ? `--upstream (#${Number(index) + 1})` : '--upstream';
  if (key === 'access') return sub === 'deny' ? '--deny' : '--allow';
  if (key === 'health_check') return '--health-check-interval';
  if (key === 'proxy_protocol') return '--proxy-protocol';
  if (key === 'inspect') return sub === 'capture' ? '--capture' : '--log-data';
  return `--${key!.replace(/_/g, '-')}`;
}

function joinHostPort(host: string, port: string): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

function integer(flag: string, text: string | undefined, min = 1): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got "${text}"`);
  return Number(text);
}

function port(flag: string, text: string): number {
  const value = integer(flag, text, 0)!;
  if (value > 65535) throw new UsageError(`${flag}: port out of range, got "${text}"`);
  return value;
}
