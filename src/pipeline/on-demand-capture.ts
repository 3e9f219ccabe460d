/**
 * On-demand capture: a pcap of one live connection, or of a listener's connections, started
 * and stopped at run time (admin API). It is a live filter (pipeline/live.ts) with one tap per
 * direction after the listener's configured filters, so the file shows what the proxy sends
 * on, on both sides, from the moment the capture joined. Bounded: it stops by itself after
 * `maxBytes` of payload or `maxMs`, whichever comes first. The file lives in the system's
 * temporary folder until the capture is replaced or the admin endpoint closes.
 */
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Filter, FilterContext } from '../filters/filter.js';
import type { LiveFilter, LiveFilters } from './live.js';
import { ConnectionFilterContext } from './pipeline.js';
import { ConnectionCapture } from '../inspect/capture.js';
import { PcapWriter } from '../inspect/pcap-writer.js';
import { TcpProxyError } from '../errors/errors.js';

export interface CaptureLimits {
  readonly maxBytes: number;
  readonly maxMs: number;
}

export const DEFAULT_CAPTURE_LIMITS: CaptureLimits = { maxBytes: 16 * 1024 * 1024, maxMs: 60_000 };

let lastId = 0;

export class CaptureSession {
  state: 'running' | 'stopped' = 'running';
  stopReason: 'stopped' | 'max_bytes' | 'max_time' | undefined;
  bytes = 0;
  private readonly captures = new Map<string, ConnectionCapture>();
  private readonly filter: LiveFilter;
  private readonly timer: NodeJS.Timeout;
  private stopping: Promise<void> | undefined;

  private constructor(
    id: number,
    readonly target: string,
    readonly path: string,
    private readonly writer: PcapWriter,
    private readonly live: LiveFilters,
    readonly limits: CaptureLimits,
    only: string | undefined,
  ) {
    const name = `capture-${id}`;
    this.filter = {
      name,
      toxicity: 1,
      only,
      spec: { name, type: 'capture', target },
      plan: { name: 'capture', directions: ['to_upstream', 'to_client'], create: (context) => this.tap(context) },
    };
    this.timer = setTimeout(() => void this.stop('max_time'), limits.maxMs).unref();
    live.add(this.filter);
  }

  /** Starts capturing `live`'s connections (or only the one with id `only`) into a new temporary file. */
  static async start(target: string, live: LiveFilters, only: string | undefined, limits: CaptureLimits, log: Logger): Promise<CaptureSession> {
    const id = ++lastId;
    const path = join(tmpdir(), `tcpproxy-capture-${process.pid}-${id}.pcap`);
    // No rotation: the session stops at maxBytes instead.
    const writer = await PcapWriter.open(path, { maxBytes: Number.MAX_SAFE_INTEGER, keep: 0 }, log);
    return new CaptureSession(id, target, path, writer, live, limits, only);
  }

  describe(): Record<string, unknown> {
    return {
      target: this.target,
      state: this.state,
      ...(this.stopReason && { stop_reason: this.stopReason }),
      bytes: this.bytes,
      max_bytes: this.limits.maxBytes,
      max_seconds: this.limits.maxMs / 1000,
    };
  }

  /** Takes the taps out (each connection's conversations get their FINs) and closes the file. */
  stop(reason: 'stopped' | 'max_bytes' | 'max_time' = 'stopped'): Promise<void> {
    this.stopping ??= (async () => {
      this.stopReason = reason;
      clearTimeout(this.timer);
      this.live.remove(this.filter.name);
      for (const capture of this.captures.values()) capture.close();
      await this.writer.close();
      this.state = 'stopped';
    })();
    return this.stopping;
  }

  file(): Promise<Buffer> {
    return readFile(this.path);
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.path, { force: true });
  }

  private tap(context: FilterContext): Filter {
    if (!(context instanceof ConnectionFilterContext)) throw new TcpProxyError('internal', 'capture needs a proxied connection');
    const id = context.connectionId;
    let capture = this.captures.get(id);
    if (!capture) {
      capture = new ConnectionCapture(this.writer, context.connection);
      this.captures.set(id, capture);
    }
    const tap = capture.passThrough(context.direction);
    const owned = capture;
    return {
      data: (chunk, push) => {
        this.bytes += chunk.length;
        // Out of the chain's call: the stop removes this very stage.
        if (this.bytes >= this.limits.maxBytes) setImmediate(() => void this.stop('max_bytes'));
        return tap.data(chunk, push);
      },
      end: (push) => tap.end!(push),
      destroy: () => {
        owned.close();
        this.captures.delete(id);
      },
    };
  }
}
