/**
 * The control subcommands' command line: `tcpproxy reload|stop|status|upgrade` and where to
 * find the running instance (`--config FILE`, `--admin HOST:PORT`, `--pid-file FILE`).
 * What they do is control.ts.
 */
import { DurationError, parseDuration } from '../config/duration.js';
import { UsageError } from './args.js';

export const CONTROL_ACTIONS = ['reload', 'stop', 'status', 'upgrade'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export interface ControlCommand {
  readonly kind: 'control';
  readonly action: ControlAction;
  readonly configFile?: string | undefined;
  readonly admin?: string | undefined;
  readonly adminToken?: string | undefined;
  readonly pidFile?: string | undefined;
  readonly json: boolean;
  /** How long `stop` waits for the process to exit; undefined: shutdown_timeout + 10s, or 60s. */
  readonly timeoutMs?: number | undefined;
}

export function isControlAction(word: string | undefined): word is ControlAction {
  return (CONTROL_ACTIONS as readonly string[]).includes(word ?? '');
}

/** The flags a control command reads; every other flag given with one is a usage error. */
export interface ControlFlags {
  config?: string | undefined;
  admin?: string | undefined;
  'admin-token'?: string | undefined;
  'pid-file'?: string | undefined;
  json?: boolean | undefined;
  timeout?: string | undefined;
}

const OWN_FLAGS = new Set(['config', 'admin', 'admin-token', 'pid-file', 'json', 'timeout']);

export function parseControlCommand(positionals: readonly string[], values: ControlFlags & Record<string, unknown>): ControlCommand {
  const action = positionals[0] as ControlAction;
  if (positionals.length > 1) throw new UsageError(`${action}: unexpected argument "${positionals[1]}"`);
  const foreign = Object.keys(values).find((flag) => values[flag] !== undefined && !OWN_FLAGS.has(flag));
  if (foreign !== undefined)
    throw new UsageError(
      `${action}: --${foreign} is not an option of "tcpproxy ${action}" (it takes --config, --admin, --admin-token, --pid-file, --json, --timeout)`,
    );
  if (values.timeout !== undefined && action !== 'stop') throw new UsageError(`${action}: --timeout is an option of "tcpproxy stop"`);
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    try {
      timeoutMs = parseDuration(values.timeout);
    } catch (error) {
      if (error instanceof DurationError) throw new UsageError(`--timeout: ${error.message}`);
      throw error;
    }
    if (timeoutMs <= 0) throw new UsageError(`--timeout: expected more than 0, got "${values.timeout}"`);
  }
  if (values.config === undefined && values.admin === undefined && values['pid-file'] === undefined) {
    throw new UsageError(`${action}: say where the running instance is: --config FILE, --admin HOST:PORT or --pid-file FILE`);
  }
  return {
    kind: 'control',
    action,
    configFile: values.config,
    admin: values.admin,
    adminToken: values['admin-token'],
    pidFile: values['pid-file'],
    json: values.json === true,
    timeoutMs,
  };
}
