/**
 * The process logger: pino writing JSON lines to stdout (asynchronously, so that access
 * logging at a high connection rate does not block the event loop), or pino-pretty when
 * stdout is a TTY or `log.format: pretty`. Access-log lines are ordinary entries with
 * `event: close | reject` (see access-log.ts).
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import pretty from 'pino-pretty';

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
  // every 100 ms; pino's exit hook flushes the rest.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 8192 });
  setInterval(() => destination.flush(), LOG_FLUSH_INTERVAL_MS).unref();
  return pino(base, destination);
}
