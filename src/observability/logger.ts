/**
 * The process logger: pino writing JSON lines to stdout (asynchronously, so that access
 * logging at a high connection rate does not block the event loop), or pino-pretty when
 * stdout is a TTY or `log.format: pretty`. Access-log lines are ordinary entries with
 * `event: close | reject` (see access-log.ts).
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';
import { LogSink } from './log-sink.js';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

export interface LoggerOptions {
  level: LevelWithSilent;
  format?: LogFormat | undefined;
  /** Where JSON lines go instead of stdout (tests, embedding). */
  destination?: DestinationStream;
}

const LOG_FLUSH_INTERVAL_MS = 100;

export function createLogger(options: LoggerOptions): Logger {
  const format = options.format ?? (process.stdout.isTTY ? 'pretty' : 'json');
  const base = {
    level: options.level,
    base: { pid: process.pid },
    formatters: { level: (label: string) => ({ level: label }) },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  if (format === 'pretty') {
    return pino(base, pretty({ colorize: Boolean(process.stdout.isTTY), sync: true, translateTime: 'SYS:HH:MM:ss.l' }));
  }
  // Lines are batched (one write per 8 KiB instead of one per connection: at thousands of
  // connections per second that write was the proxy's largest cost) and flushed at least
  // every 100 ms and at exit. A closed stdout (EPIPE) stops the log, never the proxy.
  return pino(base, new LogSink(1, { minLength: 8192, flushIntervalMs: LOG_FLUSH_INTERVAL_MS }));
}
