/**
 * The process logger: pino writing JSON lines to stdout (asynchronously, so that access
 * logging at a high connection rate does not block the event loop), or pino-pretty when
 * stdout is a TTY or `log.format: pretty`. Access-log lines are ordinary entries with
 * `event: close | reject` (see access-log.ts).
 *
 * `log.file` and `log.syslog` send the lines there instead of stdout (to both when both are
 * set). The file is opened for appending and reopened by `reopen()` (SIGUSR1), so that
 * logrotate can rename it and have the next lines land in a fresh file at the same path.
 */
import type { DestinationStream, Logger, LevelWithSilent } from 'pino';
import { requireCommonJs } from '../deps/commonjs.js';
import { isoTime } from './iso-time.js';
import { LogSink } from './log-sink.js';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SyslogConfig } from './syslog-config.js';
import { SyslogDestination } from './syslog.js';
import { TcpProxyError } from '../errors/errors.js';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level: LevelWithSilent;
  format?: LogFormat | undefined;
  /** Where JSON lines go instead of stdout (tests, embedding). */
  destination?: DestinationStream;
  /** `log.file`: append to this file instead of stdout. */
  file?: string | undefined;
  /** `log.syslog`: send RFC 5424 messages there instead of stdout. */
  syslog?: SyslogConfig | undefined;
}

export interface ProcessLogs {
  readonly logger: Logger;
  /** Reopens `log.file` at its path (after logrotate renamed it); a no-op without one. */
  reopen(): void;
}

const { pino } = requireCommonJs('pino');

const LOG_FLUSH_INTERVAL_MS = 100;

/** pino-pretty, loaded only for `format: pretty`: JSON logging, the production case, never pays for it. */
function pretty(options: import('pino-pretty').PrettyOptions): import('pino-pretty').PrettyStream {
  return requireCommonJs('pino-pretty')(options);
}

export function createLogger(options: LoggerOptions): Logger {
  return openLogs(options).logger;
}

export function openLogs(options: LoggerOptions): ProcessLogs {
  const format = options.format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  const base = {
    level: options.level,
    base: { pid: process.pid },
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: isoTime,
  };
  const noReopen = (): void => undefined;
  if (options.destination) return { logger: pino(base, options.destination), reopen: noReopen };
  if (options.file !== undefined || options.syslog !== undefined) {
    const file = options.file !== undefined ? batched(options.file) : undefined;
    const streams: DestinationStream[] = [];
    if (file) streams.push(format === 'pretty' ? pretty({ colorize: false, sync: true, destination: file, translateTime: 'SYS:HH:MM:ss.l' }) : file);
    if (options.syslog) streams.push(new SyslogDestination(options.syslog));
    // The streams' own level is the lowest: the logger's level (changed on reload) decides.
    const destination = streams.length === 1 ? streams[0]! : pino.multistream(streams.map((stream) => ({ stream, level: 'trace' as const })));
    const logger = pino(base, destination);
    const reopen = (): void => {
      if (!file) return;
      // Written once the new file is open: its first line, and what a rotation script can wait for.
      file.once('ready', () => logger.info({ event: 'log_reopened', file: options.file }, 'log file reopened'));
      file.reopen();
    };
    return { logger, reopen };
  }
  if (format === 'pretty') {
    return { logger: pino(base, pretty({ colorize: Boolean(process.stdout.isTTY), sync: true, translateTime: 'SYS:HH:MM:ss.l' })), reopen: noReopen };
  }
  // Lines are batched (one write per 8 KiB instead of one per connection: at thousands of
  // connections per second that write was the proxy's largest cost) and flushed at most
  // 100 ms after a line came (no timer while idle) and at exit. A closed stdout (EPIPE) stops the log, never the proxy.
  return { logger: pino(base, new LogSink(1, { minLength: 8192, flushIntervalMs: LOG_FLUSH_INTERVAL_MS })), reopen: noReopen };
}

/**
 * `log.file`: batched like stdout, flushed at least every 100 ms; pino's exit hook flushes
 * the rest (a file has no reader to vanish). The path is opened for appending (and
 * created, with its directory, when missing).
 */
function batched(dest: string): ReturnType<typeof pino.destination> {
  checkWritable(dest);
  const destination = pino.destination({ dest, sync: false, minLength: 8192, append: true, mkdir: true });
  // After start-up (a reopen into a directory that was removed...): say so, never crash.
  destination.on('error', (error: NodeJS.ErrnoException) => process.stderr.write(`tcpproxy: log.file ${String(dest)}: ${error.code ?? error.message}\n`));
  setInterval(() => destination.flush(), LOG_FLUSH_INTERVAL_MS).unref();
  return destination;
}

/** A log file that cannot be opened is a start-up failure naming it, not a crash later. */
function checkWritable(path: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    closeSync(openSync(path, 'a'));
  } catch (error) {
    throw new LogFileError(`log.file ${path}: cannot open it for appending (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

export class LogFileError extends TcpProxyError {
  constructor(message: string) {
    super('log_file', message);
  }
}
