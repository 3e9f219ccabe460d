/** An in-process proxy for the tests, with its access log captured as parsed JSON lines. */
import { buildSnapshot } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { ProxyRuntime } from '../../src/runtime/runtime.js';
import { LogCollector, type LogLine } from './log-collector.js';

export type { LogLine };

export interface TestProxy {
  readonly runtime: ProxyRuntime;
  readonly port: number;
  readonly logs: LogLine[];
  /** Resolves with the first log line matching, now or later. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The access-log lines (close and reject events). */
  accessLog(): LogLine[];
  stop(): Promise<void>;
}

/**
 * Starts a proxy from a raw config; the first listener's address is read back as `port`.
 * `baseDir` is where relative paths (plugins, capture files) resolve, as the config file's folder would be;
 * `now` is the wall clock the access schedules read.
 */
export async function startProxy(raw: Record<string, unknown>, options: { baseDir?: string; now?: () => number } = {}): Promise<TestProxy> {
  const collector = new LogCollector();
  const destination = collector.destination();
  const snapshot = buildSnapshot({ log: { level: 'info' }, ...raw }, options.baseDir === undefined ? {} : { baseDir: options.baseDir });
  const runtime = new ProxyRuntime(snapshot, createLogger({ level: snapshot.log.level, destination }), undefined, options.now ? { now: options.now } : {});
  await runtime.start();
  const port = runtime.listenerAddress(snapshot.listeners[0]!.name)!.port;
  return {
    runtime,
    port,
    logs: collector.lines,
    waitForLog: (predicate, timeoutMs) => collector.waitFor(predicate, timeoutMs),
    accessLog: () => collector.lines.filter((line) => line.event === 'close' || line.event === 'reject'),
    stop: () => runtime.shutdown(0),
  };
}

/** A one-listener config with the given upstreams and listener keys. */
export function oneListener(upstreams: unknown[], keys: Record<string, unknown> = {}): Record<string, unknown> {
  return { listeners: [{ name: 'test', listen: '127.0.0.1:0', upstreams, ...keys }] };
}
