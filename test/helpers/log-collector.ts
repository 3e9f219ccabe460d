/**
 * Collects a proxy's JSON log lines (from an in-process destination or a child's stdout)
 * and lets tests wait for a line matching a predicate, now or later.
 */
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
