/**
 * On-demand capture through the admin API (pipeline/on-demand-capture.ts):
 *
 *   POST   /api/connections/{id}/capture     start capturing one open connection -> 201
 *   POST   /api/listeners/{name}/capture     start capturing a listener's connections -> 201
 *   DELETE .../capture                       stop it -> 200 (what was captured)
 *   GET    .../capture                       the pcap file, once stopped (409 while running)
 *
 * `?max_bytes=N&seconds=S` bound it (default 16 MiB of payload, 60 s); it stops by itself at
 * either. A connection can be captured when it is on the filtered path (see pipeline/live.ts):
 * on another, the answer is 409. A new capture of the same target replaces the old file.
 */
import type { Logger } from 'pino';
import { CaptureSession, DEFAULT_CAPTURE_LIMITS, type CaptureLimits } from '../pipeline/on-demand-capture.js';
import type { RuntimeControl } from './admin-runtime.js';
import { errorReply, jsonReply, type Reply } from './reply.js';
import type { AdminRoute, AdminHandler, RequestContext } from './routes.js';

const MAX_CAPTURE_BYTES = 1024 * 1024 * 1024;
const MAX_CAPTURE_SECONDS = 3600;

interface Target {
  kind: 'connection' | 'listener';
  name: string;
}

export class CaptureRoutes {
  private readonly sessions = new Map<string, CaptureSession>();

  constructor(
    private readonly control: RuntimeControl | undefined,
    private readonly logger: Logger,
  ) {}

  routes(): AdminRoute[] {
    const handler = (run: AdminHandler['run']): AdminHandler => ({ open: false, run });
    return (['connection', 'listener'] as const).flatMap((kind) => {
      const path = kind === 'connection' ? '/api/connections/:name/capture' : '/api/listeners/:name/capture';
      const target = (request: RequestContext): Target => ({ kind, name: request.params.name! });
      return [
        {
          method: 'POST' as const,
          path,
          handler: handler((r) => (this.control ? this.start(this.control, target(r), r.query) : errorReply(501, 'run-time control needs workers: 1'))),
        },
        { method: 'DELETE' as const, path, handler: handler((r) => this.stop(target(r))) },
        { method: 'GET' as const, path, handler: handler((r) => this.download(target(r))) },
      ];
    });
  }

  /** The admin endpoint is closing: captures stop and their files go. */
  async close(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((session) => session.dispose()));
    this.sessions.clear();
  }

  private async start(control: RuntimeControl, target: Target, query: URLSearchParams): Promise<Reply> {
    const limits = readLimits(query);
    if (typeof limits === 'string') return errorReply(400, limits);
    const listener = target.kind === 'listener' ? target.name : control.listenerOf(target.name);
    const live = listener === undefined ? undefined : control.liveFilters(listener);
    if (!live) return errorReply(404, `no ${target.kind} "${target.name}"`);
    if (target.kind === 'connection' && !live.follows(target.name)) {
      return errorReply(
        409,
        `connection "${target.name}" is on the plain data path, which cannot be captured while it runs (live_filters: true on its listener, or a listener capture, puts new connections on the filtered path)`,
      );
    }
    const key = keyOf(target);
    const previous = this.sessions.get(key);
    if (previous?.state === 'running') return errorReply(409, `a capture of ${target.kind} "${target.name}" is running`);
    await previous?.dispose();
    const session = await CaptureSession.start(
      `${target.kind} ${target.name}`,
      live,
      target.kind === 'connection' ? target.name : undefined,
      limits,
      this.logger,
    );
    this.sessions.set(key, session);
    this.logger.info({ event: 'capture', action: 'start', target: session.target, file: session.path, ...session.describe() }, 'on-demand capture started');
    return jsonReply(201, session.describe());
  }

  private async stop(target: Target): Promise<Reply> {
    const session = this.sessions.get(keyOf(target));
    if (!session) return errorReply(404, `no capture of ${target.kind} "${target.name}"`);
    await session.stop();
    this.logger.info({ event: 'capture', action: 'stop', target: session.target, ...session.describe() }, 'on-demand capture stopped');
    return jsonReply(200, session.describe());
  }

  private async download(target: Target): Promise<Reply> {
    const session = this.sessions.get(keyOf(target));
    if (!session) return errorReply(404, `no capture of ${target.kind} "${target.name}"`);
    if (session.state === 'running') return errorReply(409, 'still capturing: DELETE it to stop it first');
    return {
      status: 200,
      contentType: 'application/vnd.tcpdump.pcap',
      body: await session.file(),
      headers: { 'Content-Disposition': `attachment; filename="tcpproxy-${target.kind}-${target.name.replace(/[^\w.-]/g, '_')}.pcap"` },
    };
  }
}

function keyOf(target: Target): string {
  return `${target.kind}:${target.name}`;
}

function readLimits(query: URLSearchParams): CaptureLimits | string {
  const number = (key: string, max: number): number | string | undefined => {
    const text = query.get(key);
    if (text === null) return undefined;
    const value = Number(text);
    return /^\d+$/.test(text) && value >= 1 && value <= max ? value : `${key}: expected a whole number from 1 to ${max}`;
  };
  const maxBytes = number('max_bytes', MAX_CAPTURE_BYTES);
  const seconds = number('seconds', MAX_CAPTURE_SECONDS);
  if (typeof maxBytes === 'string') return maxBytes;
  if (typeof seconds === 'string') return seconds;
  return { maxBytes: maxBytes ?? DEFAULT_CAPTURE_LIMITS.maxBytes, maxMs: seconds === undefined ? DEFAULT_CAPTURE_LIMITS.maxMs : seconds * 1000 };
}
