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
import { fstatSync, writeSync, writev } from 'node:fs';
import type { DestinationStream } from 'pino';

export interface LogSinkOptions {
  /** Lines are written once this many bytes are pending (one write per batch, not per line). */
  readonly minLength: number;
  /** ...and at most this long after a line came (a timer armed only while lines wait: an idle proxy is not woken). */
  readonly flushIntervalMs: number;
}

/** How often the exit flush retries a full non-blocking pipe before giving the rest up. */
const EXIT_RETRIES = 50;
/** The byte chunks lines are encoded into; a line longer than a chunk gets one of its own. */
const CHUNK_BYTES = 64 * 1024;
/** Free chunks kept for the next batches (a burst's extra chunks go to the GC). */
const SPARE_CHUNKS = 4;
/** The most bytes one UTF-16 code unit takes in UTF-8. */
const MAX_BYTES_PER_UNIT = 3;

export class LogSink implements DestinationStream {
  /** Filled chunks (views of their used part) waiting to be written, oldest first. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Where the next line is encoded, and how much of it is used. */
  private current: Buffer | undefined;
  private used = 0;
  private readonly spare: Buffer[] = [];
  private writing = false;
  private broken = false;
  /** Armed while lines wait for their batch; none while the sink is idle. */
  private flushTimer: NodeJS.Timeout | undefined;
  /**
   * stdout redirected to a regular file: batches are written synchronously. A file has no
   * reader to wait for, and a write from the main thread costs less than the thread-pool
   * round trip; lines no longer pile up behind a write in flight during a burst.
   */
  private readonly toFile: boolean;

  constructor(
    private readonly fd: number,
    private readonly options: LogSinkOptions,
  ) {
    this.toFile = isRegularFile(fd);
    // No event loop at exit: what is pending goes out synchronously, boundedly.
    process.once('exit', () => this.flushSync());
  }

  /** True once a write failed for good (EPIPE: the reader is gone): lines are dropped since. */
  get isBroken(): boolean {
    return this.broken;
  }

  /**
   * Encodes the line into the current chunk at once: the string dies young, where a list
   * of pending strings outlived a burst's scavenges and grew the old generation (5,000
   * connections closing at once: +6 MB of RSS that stayed).
   */
  write(line: string): void {
    if (this.broken) return;
    const room = line.length * MAX_BYTES_PER_UNIT;
    if (room > CHUNK_BYTES) {
      this.seal();
      const bytes = Buffer.from(line);
      this.pending.push(bytes);
      this.pendingBytes += bytes.length;
    } else {
      if (this.current === undefined || this.used + room > CHUNK_BYTES) this.seal();
      this.current ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(CHUNK_BYTES);
      const written = this.current.write(line, this.used);
      this.used += written;
      this.pendingBytes += written;
    }
    if (this.pendingBytes >= this.options.minLength) this.flush();
    else this.flushLater();
  }

  /** Starts writing what is pending, unless a write is already in flight (it calls back here). */
  flush(): void {
    if (this.writing || this.broken || this.pendingBytes === 0) return;
    if (this.toFile) return this.flushSync();
    this.writing = true;
    this.writeFrom(this.take(), 0);
  }

  /** Pending lines in one synchronous write loop that always ends: at exit, and every batch to a regular file. */
  flushSync(): void {
    if (this.broken || this.pendingBytes === 0) return;
    // (At exit, a batch still in flight on a pipe is left to its write: it completes in libuv's thread pool.)
    const batch = this.take();
    const data = batch.length === 1 ? batch[0]! : Buffer.concat(batch);
    let offset = 0;
    for (let attempt = 0; offset < data.length && attempt < EXIT_RETRIES;) {
      try {
        offset += writeSync(this.fd, data, offset, data.length - offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') return this.breaks();
        attempt++;
      }
    }
    this.recycle(batch);
  }

  /** Writes `batch` from `offset` bytes into it (a partial write goes on from there). */
  private writeFrom(batch: Buffer[], offset: number): void {
    const views = offset === 0 ? batch : remainder(batch, offset);
    writev(this.fd, views, (error, written) => {
      if (error) {
        // A full non-blocking pipe: try again shortly; anything else means nobody reads.
        if (error.code === 'EAGAIN') return void setTimeout(() => this.writeFrom(batch, offset), 10).unref();
        this.writing = false;
        return this.breaks();
      }
      if (offset + written < byteLength(batch)) return this.writeFrom(batch, offset + written);
      this.writing = false;
      this.recycle(batch);
      // Lines that came during the write: their timer may have fired meanwhile, finding it busy.
      if (this.pendingBytes >= this.options.minLength) this.flush();
      else if (this.pendingBytes > 0) this.flushLater();
    });
  }

  private flushLater(): void {
    this.flushTimer ??= setTimeout(this.onFlushTimer, this.options.flushIntervalMs).unref();
  }

  private readonly onFlushTimer = (): void => {
    this.flushTimer = undefined;
    this.flush();
  };

  /** Closes the current chunk: what it holds (already counted in pendingBytes) joins the pending batch. */
  private seal(): void {
    if (this.current === undefined || this.used === 0) return;
    this.pending.push(this.current.subarray(0, this.used));
    this.current = undefined;
    this.used = 0;
  }

  private take(): Buffer[] {
    this.seal();
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return batch;
  }

  /** Full-size chunks of a written batch serve the next lines. */
  private recycle(batch: Buffer[]): void {
    for (const view of batch) {
      if (view.buffer.byteLength === CHUNK_BYTES && this.spare.length < SPARE_CHUNKS) this.spare.push(Buffer.from(view.buffer, 0, CHUNK_BYTES));
    }
  }

  private breaks(): void {
    this.broken = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.current = undefined;
    this.used = 0;
  }
}

function isRegularFile(fd: number): boolean {
  try {
    return fstatSync(fd).isFile();
  } catch {
    return false;
  }
}

function byteLength(batch: readonly Buffer[]): number {
  let total = 0;
  for (const view of batch) total += view.length;
  return total;
}

/** The views of `batch` from byte `offset` on. */
function remainder(batch: readonly Buffer[], offset: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const view of batch) {
    if (offset >= view.length) offset -= view.length;
    else {
      rest.push(offset > 0 ? view.subarray(offset) : view);
      offset = 0;
    }
  }
  return rest;
}
