/**
 * Collects JSON log lines (from an in-process destination, a child's stdout, or the pino
 * logger of `memoryLogger()`) and lets tests wait for a line matching a predicate, now or later.
 */
import { Writable } from 'node:stream';
import { pino, type Level, type Logger } from 'pino';

export interface LogLine {
  event?: string;
  reason?: string;
  [key: string]: unknown;
}

interface Waiter {
  predicate: (line: LogLine) => boolean;
  resolve: (line: LogLine) => void;
}

export interface LogCollectorOptions {
  /** Keep a line that is not JSON as `{ event: 'unparsed', text }` instead of throwing. */
  keepUnparsed?: boolean;
  /** Extra diagnostics for a timeout message (e.g. the child's stderr). */
  context?: () => string;
}

export class LogCollector {
  readonly lines: LogLine[] = [];
  private readonly waiters = new Set<Waiter>();
  private partial = '';

  constructor(private readonly options: LogCollectorOptions = {}) {}

  /** Feeds raw output; every complete line is parsed and offered to the waiters. */
  feed(text: string): void {
    this.partial += text;
    let newline;
    while ((newline = this.partial.indexOf('\n')) >= 0) {
      const raw = this.partial.slice(0, newline);
      this.partial = this.partial.slice(newline + 1);
      if (raw) this.add(this.parse(raw));
    }
  }

  /** A stream to give a logger as its destination: what is written to it is fed here. */
  destination(): Writable {
    return new Writable({
      write: (chunk: Buffer, _encoding, callback) => {
        this.feed(chunk.toString());
        callback();
      },
    });
  }

  waitFor(predicate: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const found = this.lines.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const context = this.options.context?.() ?? '';
        reject(new Error(`no matching log line within ${timeoutMs}ms${context}\nlogs:\n${this.lines.map((l) => JSON.stringify(l)).join('\n')}`));
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** The next line matching, among those still to come (a later state change, say); bound it with `within`. */
  next(predicate: (line: LogLine) => boolean): Promise<LogLine> {
    return new Promise((resolve) => this.waiters.add({ predicate, resolve }));
  }

  private parse(text: string): LogLine {
    if (!this.options.keepUnparsed) return JSON.parse(text) as LogLine;
    try {
      return JSON.parse(text) as LogLine;
    } catch {
      return { event: 'unparsed', text };
    }
  }

  private add(line: LogLine): void {
    this.lines.push(line);
    for (const waiter of this.waiters) {
      if (waiter.predicate(line)) {
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }
}

/** A real pino logger (JSON, level `debug` by default) whose lines are collected in memory, for unit tests. */
export function memoryLogger(level: Level = 'debug'): LogCollector & { readonly logger: Logger } {
  const collector = new LogCollector();
  // pino writes each line synchronously to an object destination: a line is there as soon as it is logged.
  const logger = pino({ level }, { write: (text: string) => collector.feed(text) });
  return Object.assign(collector, { logger });
}
