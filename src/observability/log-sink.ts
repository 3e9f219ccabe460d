/**
 * Where JSON log lines go: a batching, asynchronous writer to a file descriptor (stdout)
 * that gives up, instead of wedging, when the reader is gone.
 *
 * It replaces pino.destination() (sonic-boom) for stdout because sonic-boom's exit flush
 * retries a failed write forever: with stdout piped into a reader that had exited
 * (`tcpproxy ... | head -3`), the first EPIPE met at exit hung the process in a
 * synchronous sleep loop, deaf to SIGTERM (#12). Here a write error other than EAGAIN
 * marks the sink broken: later lines are dropped and the proxy keeps serving (a log reader
 * that goes away must not take the proxy with it, as with nginx or HAProxy).
 */
import { write, writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

export interface LogSinkOptions {
  /** Lines are written once this many characters are pending (one write per batch, not per line). */
  readonly minLength: number;
  /** ...and at least this often. */
  readonly flushIntervalMs: number;
}

/** How often the exit flush retries a full non-blocking pipe before giving the rest up. */
const EXIT_RETRIES = 50;

export class LogSink implements DestinationStream {
  private pending: string[] = [];
  private pendingLength = 0;
  private writing = false;
  private broken = false;

  constructor(
    private readonly fd: number,
    private readonly options: LogSinkOptions,
  ) {
    setInterval(() => this.flush(), options.flushIntervalMs).unref();
    // No event loop at exit: what is pending goes out synchronously, boundedly.
    process.once('exit', () => this.flushSync());
  }

  /** True once a write failed for good (EPIPE: the reader is gone): lines are dropped since. */
  get isBroken(): boolean {
    return this.broken;
  }

  write(line: string): void {
    if (this.broken) return;
    this.pending.push(line);
    this.pendingLength += line.length;
    if (this.pendingLength >= this.options.minLength) this.flush();
  }

  /** Starts writing what is pending, unless a write is already in flight (it calls back here). */
  flush(): void {
    if (this.writing || this.broken || this.pendingLength === 0) return;
    this.writing = true;
    this.writeFrom(this.take(), 0);
  }

  /** The exit path: pending lines in one synchronous write loop that always ends. */
  flushSync(): void {
    if (this.broken || this.pendingLength === 0) return;
    // A batch still in flight is left to its write (it completes in libuv's thread pool).
    const data = this.take();
    let offset = 0;
    for (let attempt = 0; offset < data.length && attempt < EXIT_RETRIES;) {
      try {
        offset += writeSync(this.fd, data, offset, data.length - offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return this.breaks();
        attempt++;
      }
    }
  }

  private writeFrom(data: Buffer, offset: number): void {
    write(this.fd, data, offset, data.length - offset, null, (error, written) => {
      if (error) {
        // A full non-blocking pipe: try again shortly; anything else means nobody reads.
        if (error.code === 'EAGAIN') return void setTimeout(() => this.writeFrom(data, offset), 10).unref();
        this.writing = false;
        return this.breaks();
      }
      if (offset + written < data.length) return this.writeFrom(data, offset + written);
      this.writing = false;
      if (this.pendingLength >= this.options.minLength) this.flush();
    });
  }

  private take(): Buffer {
    const data = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingLength = 0;
    return data;
  }

  private breaks(): void {
    this.broken = true;
    this.pending = [];
    this.pendingLength = 0;
  }
}
