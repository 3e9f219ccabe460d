/**
 * Command-line parsing (node:util parseArgs, strict): the seed's 4-argument form,
 * `--listen/--upstream` with flags that mirror config keys, `--config FILE [--check]`,
 * and `demo`. Flags become the same raw config object a file would give, so one schema
 * validates both; errors found there are reported under the flag's name.
 */
import { parseArgs } from 'node:util';
import { formatHostPort } from '../net/address.js';
import { didYouMean } from '../config/did-you-mean.js';
import type { RawConfig } from '../config/schema.js';
import { isControlAction, parseControlCommand, type ControlCommand } from './control-command.js';
import { TcpProxyError } from '../errors/errors.js';

export class UsageError extends TcpProxyError {
  constructor(message: string) {
    super('usage', message);
  }
}

export type Command =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'demo'; options: DemoOptions }
  | {
      kind: 'run';
      configFile?: string;
      raw?: RawConfig;
      check: boolean;
      overrides: GlobalOverrides;
      /** The raw config came from the 4-argument form: its errors name those arguments. */
      fourArguments?: boolean;
    }
  | { kind: 'toxiproxy-server'; host: string; port: number; configFile?: string; logLevel?: string }
  | ControlCommand;

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
  adminToken?: string;
  workers?: string;
  pidFile?: string;
}

/** Every flag; --help lists each of them (a test checks it). */
export const OPTIONS = {
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
  'client-timeout': { type: 'string' },
  'server-timeout': { type: 'string' },
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
  'pid-file': { type: 'string' },
  // the control subcommands (control-command.ts)
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  port: { type: 'string' },
  'admin-port': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Flags that shape a listener: they need --listen (or the 4-argument form), not --config. */
const LISTENER_FLAGS = [
  'balance',
  'max-connections',
  'max-connections-per-ip',
  'on-limit',
  'queue-timeout',
  'allow',
  'deny',
  'connect-timeout',
  'connect-retries',
  'idle-timeout',
  'client-timeout',
  'server-timeout',
  'max-lifetime',
  'buffer-size',
  'health-check-interval',
  'proxy-protocol',
  'log-data',
  'capture',
] as const;

type StringFlag = { [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K]['type'] extends 'string' ? K : never }[keyof typeof OPTIONS];

const DURATION = 'a duration like 5m';
const WHOLE_NUMBER = 'a whole number';
const CIDR = 'a CIDR such as 10.0.0.0/8';

/** What each flag's value looks like: usage errors say what was expected. */
const VALUE_OF: Readonly<Record<StringFlag, string>> = {
  config: 'a file name',
  listen: 'HOST:PORT',
  upstream: 'HOST:PORT',
  balance: 'round_robin, least_connections, random or source_hash',
  'max-connections': WHOLE_NUMBER,
  'max-connections-per-ip': WHOLE_NUMBER,
  'on-limit': 'reject or queue',
  'queue-timeout': DURATION,
  allow: CIDR,
  deny: CIDR,
  'connect-timeout': DURATION,
  'connect-retries': WHOLE_NUMBER,
  'idle-timeout': DURATION,
  'client-timeout': DURATION,
  'server-timeout': DURATION,
  'max-lifetime': DURATION,
  'buffer-size': 'a size like 64KiB',
  'health-check-interval': DURATION,
  'proxy-protocol': 'v1 or v2',
  'log-data': 'hex or text',
  capture: 'a file name',
  admin: 'HOST:PORT',
  'admin-token': 'a token',
  workers: 'a number or auto',
  'log-level': 'trace, debug, info, warn, error or silent',
  'log-format': 'json or pretty',
  'pid-file': 'a file name',
  timeout: DURATION,
  port: 'a port number',
  'admin-port': 'a port number',
};

/** The commands besides the argument forms (some are dispatched before this parser). */
export const SUBCOMMANDS = ['demo', 'toxiproxy-server', 'reload', 'stop', 'status', 'upgrade'] as const;

const FOUR_ARGUMENTS = '<local-host> <local-port> <forward-host> <forward-port>';

type Tokens = NonNullable<ReturnType<typeof parseArgs>['tokens']>;

export function parseCommandLine(argv: readonly string[]): Command {
  if (argv[0] === 'toxiproxy-server') return parseToxiproxyServer(argv.slice(1));
  // A lenient pass first, to say precisely what is wrong with a flag (node's strict
  // messages name no alternative); the strict pass then gives the typed values.
  const { tokens } = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: false, tokens: true });
  checkFlags(tokens);
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
    ...(values['admin-token'] !== undefined && { adminToken: values['admin-token'] }),
    ...(values.workers !== undefined && { workers: values.workers }),
    ...(values['pid-file'] !== undefined && { pidFile: values['pid-file'] }),
  };
  if (isControlAction(positionals[0])) return parseControlCommand(positionals, values);
  for (const flag of ['json', 'timeout'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} is an option of the control commands (reload, stop, status, upgrade)`);
  }

  if (positionals[0] === 'demo') {
    if (positionals.length > 1) throw strayArgument(tokens) ?? new UsageError(`demo: unexpected argument "${positionals[1]}"`);
    return {
      kind: 'demo',
      options: {
        listenPort: Number(port('--port', values.port ?? '8080')),
        adminPort: Number(port('--admin-port', values['admin-port'] ?? '9901')),
        echoServers: 2,
      },
    };
  }
  for (const flag of ['port', 'admin-port'] as const) {
    if (values[flag] !== undefined) throw new UsageError(`--${flag} is an option of "tcpproxy demo"`);
  }

  if (values.config !== undefined) {
    if (positionals.length > 0) throw strayArgument(tokens) ?? new UsageError(`unexpected argument "${positionals[0]}" with --config`);
    for (const flag of [...LISTENER_FLAGS, 'listen', 'upstream'] as const) {
      if (values[flag] !== undefined) throw new UsageError(`--${flag} cannot be combined with --config (set it in the file)`);
    }
    return { kind: 'run', configFile: values.config, check: values.check === true, overrides };
  }

  let listen = values.listen;
  let upstreams = values.upstream ?? [];
  const fourArguments = positionals.length > 0;
  if (fourArguments) {
    if (listen !== undefined || upstreams.length > 0) {
      throw strayArgument(tokens) ?? new UsageError(`unexpected argument "${positionals[0]}": use either the 4-argument form or --listen/--upstream, not both`);
    }
    if (positionals.length !== 4)
      throw strayArgument(tokens, 4) ?? unknownCommand(positionals) ?? new UsageError(`expected ${FOUR_ARGUMENTS}, got ${quoteAll(positionals)}`);
    const [localHost, localPort, forwardHost, forwardPort] = positionals as [string, string, string, string];
    listen = formatHostPort(localHost, port('<local-port>', localPort));
    upstreams = [formatHostPort(forwardHost, port('<forward-port>', forwardPort, 1))];
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
  set('client_timeout', values['client-timeout']);
  set('server_timeout', values['server-timeout']);
  set('max_lifetime', values['max-lifetime']);
  set('buffer_size', values['buffer-size']);
  if (values.allow || values.deny) listener.access = { ...(values.allow && { allow: values.allow }), ...(values.deny && { deny: values.deny }) };
  if (values['health-check-interval'] !== undefined) listener.health_check = { interval: values['health-check-interval'] };
  if (values['proxy-protocol'] !== undefined) listener.proxy_protocol = { send: values['proxy-protocol'] };
  if (values['log-data'] !== undefined || values.capture !== undefined) {
    listener.inspect = { ...(values['log-data'] && { log_data: values['log-data'] }), ...(values.capture && { capture: values.capture }) };
  }
  return { kind: 'run', raw: { listeners: [listener] } as RawConfig, check: values.check === true, overrides, ...(fourArguments && { fourArguments }) };
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
    if (!match || !known.includes(match[1]!))
      throw new UsageError(`toxiproxy-server: unknown option "${arg}" (expected --host, --port, --config or --log-level)`);
    const value = match[2] ?? args[++i];
    if (value === undefined) throw new UsageError(`toxiproxy-server: --${match[1]} needs a value`);
    values[match[1]!] = value;
  }
  return {
    kind: 'toxiproxy-server',
    host: values.host ?? 'localhost',
    port: Number(port('--port', values.port ?? '8474')),
    ...(values.config !== undefined && { configFile: values.config }),
    ...(values['log-level'] !== undefined && { logLevel: values['log-level'] }),
  };
}

/** Unknown flags (with the nearest known one), a value missing, or one given to a switch. */
function checkFlags(tokens: Tokens): void {
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = (OPTIONS as Readonly<Record<string, { type: 'string' | 'boolean' }>>)[token.name];
    if (option === undefined) {
      const suggestion = token.rawName.startsWith('--') ? didYouMean(token.name, Object.keys(OPTIONS), (name) => `--${name}`) : '';
      throw new UsageError(`unknown option ${token.rawName}${suggestion}`);
    }
    const flag = `--${token.name}`;
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${flag} takes no value, got "${token.value}"`);
      continue;
    }
    const expected = `${flag}: expected ${VALUE_OF[token.name as StringFlag]}`;
    if (token.value === undefined) throw new UsageError(`${expected}, got nothing`);
    if (!token.inlineValue && token.value.startsWith('--')) throw new UsageError(`${expected}, got nothing (the next argument, ${token.value}, is an option)`);
    if (!token.inlineValue && token.value.startsWith('-')) {
      throw new UsageError(`${expected}, got "${token.value}", which reads as an option (write ${flag}=${token.value} if it is the value)`);
    }
  }
}

/**
 * A positional argument right after a flag's value is most often the second word of
 * that value (`--idle-timeout 5 minutes`): say so, rather than count positionals.
 * `allowedRun`: a run of that many positionals after a value is the 4-argument form.
 */
function strayArgument(tokens: Tokens, allowedRun?: number): UsageError | undefined {
  for (let i = 0; i < tokens.length - 1; i++) {
    const token = tokens[i]!;
    const next = tokens[i + 1]!;
    if (token.kind !== 'option' || token.value === undefined || next.kind !== 'positional') continue;
    let run = 1;
    while (tokens[i + 1 + run]?.kind === 'positional') run++;
    if (run === allowedRun) continue;
    return new UsageError(
      `--${token.name}: expected ${VALUE_OF[token.name as StringFlag]}, got "${token.value}" followed by an extra argument "${next.value}"`,
    );
  }
  return undefined;
}

/** `tcpproxy demoo`: a near miss of a command name. */
function unknownCommand(positionals: readonly string[]): UsageError | undefined {
  const suggestion = didYouMean(positionals[0]!, SUBCOMMANDS);
  return positionals.length <= 2 && suggestion !== '' ? new UsageError(`unknown command "${positionals[0]}"${suggestion}`) : undefined;
}

function quoteAll(words: readonly string[]): string {
  return `${words.length} argument${words.length === 1 ? '' : 's'}: ${words.map((word) => JSON.stringify(word)).join(' ')}`;
}

/**
 * Maps a key path of a CLI-built config back to the flag that set it, or, for the
 * 4-argument form, to the argument (ports are checked before, so a host is at fault).
 */
export function flagForKeyPath(path: string, fourArguments = false): string {
  const match = /^listeners\[0\]\.([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+))?/.exec(path);
  if (!match) return path;
  const [, key, index, sub] = match;
  if (fourArguments && key === 'listen') return '<local-host>';
  if (fourArguments && key === 'upstreams') return '<forward-host>';
  if (key === 'upstreams') return index !== undefined ? `--upstream (#${Number(index) + 1})` : '--upstream';
  if (key === 'access') return sub === 'deny' ? '--deny' : '--allow';
  if (key === 'health_check') return '--health-check-interval';
  if (key === 'proxy_protocol') return '--proxy-protocol';
  if (key === 'inspect') return sub === 'capture' ? '--capture' : '--log-data';
  return `--${key!.replace(/_/g, '-')}`;
}

function integer(flag: string, text: string | undefined, min = 1): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got "${text}"`);
  return Number(text);
}

/** A port as written (`<local-port>`, `--port`): digits only, 0 (or `min`) to 65535. */
function port(name: string, text: string, min = 0): string {
  if (!/^\d{1,5}$/.test(text) || Number(text) < min || Number(text) > 65535) {
    throw new UsageError(`${name}: expected a port number${min > 0 ? ` from ${min} to 65535` : ''}, got "${text}"`);
  }
  return text;
}
