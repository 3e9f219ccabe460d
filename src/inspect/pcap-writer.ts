/**
 * A pcap file (classic format, microsecond timestamps, LINKTYPE_ETHERNET) written in the
 * background: records are queued in memory and written in batches (writev) when 256 KiB
 * are queued or 200 ms have passed. Before the file would grow past `maxBytes` it is
 * rotated: FILE -> FILE.1 -> FILE.2 ... (`keep` rotated files; older ones are removed).
 *
 * Memory is bounded: past HIGH_WATER queued bytes `congested` is true and the capture taps
 * wait on `whenDrained()` (backpressure to the proxied connections rather than an
 * unbounded queue). A write error is logged once and ends capturing; the proxy goes on.
 */
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/** Bytes the caller leaves free at the start of each record buffer for its header. */
export const PCAP_RECORD_HEADER = 16;
const GLOBAL_HEADER_BYTES = 24;
const SNAPLEN = 262_144;
const LINKTYPE_ETHERNET = 1;
const FLUSH_BYTES = 256 * 1024;
const FLUSH_INTERVAL_MS = 200;
const HIGH_WATER = 8 * 1024 * 1024;
/** writev takes at most IOV_MAX (1024 on Linux) buffers per call. */
const MAX_BATCH_RECORDS = 1024;

export interface PcapWriterOptions {
  readonly maxBytes: number;
  readonly keep: number;
}

function globalHeader(): Buffer {
  const header = Buffer.alloc(GLOBAL_HEADER_BYTES);
  header.writeUInt32LE(0xa1b2c3d4, 0); // magic: microsecond timestamps, little-endian fields
  header.writeUInt16LE(2, 4); // version 2.4
  header.writeUInt16LE(4, 6);
  header.writeInt32LE(0, 8); // thiszone
  header.writeUInt32LE(0, 12); // sigfigs
  header.writeUInt32LE(SNAPLEN, 16);
  header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  return header;
}

export class PcapWriter {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private fileBytes = GLOBAL_HEADER_BYTES;
  private writing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private drained: Promise<void> | undefined;
  private resolveDrained: (() => void) | undefined;
  private failed = false;
  private closed = false;

  private constructor(
    readonly path: string,
    private handle: FileHandle,
    private options: PcapWriterOptions,
    private readonly log: Logger,
  ) {}

  /**
   * Opens FILE for writing (creating its folder). An existing non-empty FILE is rotated
   * away first, so that a restart does not overwrite the last capture.
   */
  static async open(path: string, options: PcapWriterOptions, log: Logger): Promise<PcapWriter> {
    await mkdir(dirname(path), { recursive: true });
    const existing = await stat(path).catch(() => undefined);
    if (existing && existing.size > 0) await shiftRotated(path, options.keep);
    const handle = await open(path, 'w');
    await handle.write(globalHeader());
    return new PcapWriter(path, handle, options, log);
  }

  /** A later config may change the limits of a file that stays open. */
  updateOptions(options: PcapWriterOptions): void {
    this.options = options;
  }

  /** True while the queue is over its high-water mark: wait on whenDrained(). */
  get congested(): boolean {
    return this.queuedBytes > HIGH_WATER;
  }

  whenDrained(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    this.drained ??= new Promise<void>((resolve) => {
      this.resolveDrained = resolve;
    });
    return this.drained;
  }

  /** Queues a record: `record` starts with PCAP_RECORD_HEADER free bytes, then the frame. */
  writeRecord(record: Buffer): void {
    if (this.failed || this.closed) return;
    const frameLength = record.length - PCAP_RECORD_HEADER;
    const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
    record.writeUInt32LE(Math.floor(micros / 1e6), 0);
    record.writeUInt32LE(micros % 1e6, 4);
    record.writeUInt32LE(Math.min(frameLength, SNAPLEN), 8);
    record.writeUInt32LE(frameLength, 12);
    this.queue.push(record);
    this.queuedBytes += record.length;
    if (this.queuedBytes >= FLUSH_BYTES) this.flush();
    else this.flushTimer ??= setTimeout(this.flush, FLUSH_INTERVAL_MS).unref();
  }

  /** Writes out everything queued and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    while (this.writing) await this.writing;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.releaseWaiters();
    await this.handle.close().catch(() => undefined);
  }

  private readonly flush = (): void => {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.writing || this.failed || this.queue.length === 0) return;
    this.writing = this.writeQueued().finally(() => {
      this.writing = undefined;
    });
  };

  private async writeQueued(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failed) {
        const batch = await this.takeBatch();
        const bytes = batch.reduce((total, record) => total + record.length, 0);
        await this.handle.writev(batch);
        this.fileBytes += bytes;
        this.queuedBytes -= bytes;
        if (!this.congested) this.releaseWaiters();
      }
    } catch (error) {
      this.failed = true;
      this.queue = [];
      this.queuedBytes = 0;
      this.releaseWaiters();
      this.log.error({ event: 'capture_error', file: this.path, err: error }, 'capture file write failed: capturing stopped');
    }
  }

  /** The next records that fit in the current file, rotating first when none does. */
  private async takeBatch(): Promise<Buffer[]> {
    const { maxBytes } = this.options;
    if (this.fileBytes > GLOBAL_HEADER_BYTES && this.fileBytes + this.queue[0]!.length > maxBytes) await this.rotate();
    let size = this.fileBytes;
    let count = 0;
    // At least one record per batch, so that a record larger than maxBytes still goes out.
    while (count < this.queue.length && count < MAX_BATCH_RECORDS && (count === 0 || size + this.queue[count]!.length <= maxBytes)) {
      size += this.queue[count]!.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async rotate(): Promise<void> {
    await this.handle.close();
    await shiftRotated(this.path, this.options.keep);
    this.handle = await open(this.path, 'w');
    await this.handle.write(globalHeader());
    this.fileBytes = GLOBAL_HEADER_BYTES;
  }

  private releaseWaiters(): void {
    const resolve = this.resolveDrained;
    this.drained = this.resolveDrained = undefined;
    resolve?.();
  }
}

/** FILE.(keep-1) -> FILE.keep, ..., FILE -> FILE.1; with keep 0, FILE is just removed. */
async function shiftRotated(path: string, keep: number): Promise<void> {
  if (keep === 0) {
    await rm(path, { force: true });
    return;
  }
  await rm(`${path}.${keep}`, { force: true });
  for (let index = keep - 1; index >= 1; index--) {
    await rename(`${path}.${index}`, `${path}.${index + 1}`).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
  await rename(path, `${path}.1`);
}
