/**
 * Multi-core: `workers: N|auto` forks N worker processes with node:cluster. Each worker
 * runs the whole proxy on the same listeners; the kernel spreads accepts across them
 * (SCHED_NONE: every worker accepts on the shared socket itself). The primary runs the
 * admin endpoint and answers it by asking every worker over IPC and merging the answers
 * (metrics, stats, connection lists); it forwards reload and shutdown to all of them and
 * restarts a worker that dies, with back-off.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type {
  AdminRuntime,
  ConnectionInfo,
  ReloadResult,
  StatsSnapshot,
  UpstreamAction,
  UpstreamActionResult,
  UpstreamChange,
  UpstreamChangeResult,
  UpstreamView,
} from '../admin/admin-runtime.js';
import { AdminServer } from '../admin/server.js';
import { mergeStats } from '../admin/stats.js';
import type { ConfigSnapshot } from '../config/load.js';
import { ProxyRuntime } from './runtime.js';
import { handleSignals } from './signals.js';
import { VERSION } from './version.js';

const REQUEST = 'tcpproxy:request';
const RESPONSE = 'tcpproxy:response';
/** A worker's listeners run: it can take run-time changes (see replayUpstreamChanges). */
const READY = 'tcpproxy:ready';
/** A worker that does not answer within this long is left out of an aggregate answer. */
const IPC_TIMEOUT_MS = 5_000;
const RESTART_BACKOFF = { baseMs: 500, maxMs: 30_000, stableAfterMs: 60_000 };

type Operation = 'stats' | 'connections' | 'close' | 'reload' | 'upstream' | 'upstreams' | 'upstream_change' | 'metrics' | 'ready' | 'shutdown';
interface Request { type: typeof REQUEST; id: number; op: Operation; args: unknown[] }
interface Response { type: typeof RESPONSE; id: number; result: unknown }

export function workerCount(snapshot: ConfigSnapshot): number {
  return snapshot.workers === 'auto' ? availableParallelism() : snapshot.workers;
}

export async function runWorkers(snapshot: ConfigSnapshot, logger: Logger, reloadSource: (() => Promise<ConfigSnapshot>) | undefined): Promise<void> {
  if (cluster.isWorker) return runWorker(snapshot, logger, reloadSource);
  await new Primary(snapshot, logger).start();
}

/** A worker: the ordinary runtime, without the admin endpoint, answering the primary. */
async function runWorker(snapshot: ConfigSnapshot, logger: Logger, reloadSource: (() => Promise<ConfigSnapshot>) | undefined): Promise<void> {
  const { admin: _admin, ...withoutAdmin } = snapshot;
  const runtime = new ProxyRuntime({ ...withoutAdmin, admin: undefined } as ConfigSnapshot, logger.child({ worker: cluster.worker!.id }), reloadSource);
  let started: Promise<void> | undefined;
  const handlers: Record<Operation, (...args: never[]) => unknown> = {
    stats: () => runtime.stats(),
    connections: () => runtime.connections(),
    close: (id: string) => runtime.closeConnection(id),
    reload: () => runtime.reload(),
    upstream: (listener: string, address: string, action: UpstreamAction) => runtime.upstreamAction(listener, address, action),
    upstreams: (listener: string) => runtime.listUpstreams(listener) ?? null,
    // A change made while this worker starts (after a crash) waits for its listeners to run.
    upstream_change: async (listener: string, change: UpstreamChange) => {
      await started;
      return runtime.changeUpstream(listener, change);
    },
    metrics: () => runtime.proxyMetrics.registry.getMetricsAsJSON(),
    ready: () => runtime.ready(),
    shutdown: async () => {
      await runtime.shutdown();
      setImmediate(() => process.exit(0));
      return true;
    },
  };
  process.on('message', (message: Request) => {
    if (message?.type !== REQUEST) return;
    void Promise.resolve()
      .then(() => (handlers[message.op] as (...args: unknown[]) => unknown)(...message.args))
      .then((result) => process.send?.({ type: RESPONSE, id: message.id, result } satisfies Response));
  });
  // The primary owns the signals; a terminal's Ctrl-C reaches the whole group, so workers ignore it.
  process.on('SIGINT', () => undefined);
  // `pkill -HUP tcpproxy` also reaches workers: the primary forwards reloads, so ignore it here.
  process.on('SIGHUP', () => undefined);
  process.on('SIGTERM', () => void handlers.shutdown());
  started = runtime.start();
  await started;
  process.send?.({ type: READY });
}

class Primary implements AdminRuntime {
  private nextRequest = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private stopping = false;
  private backoffMs = RESTART_BACKOFF.baseMs;
  /**
   * Run-time upstream changes since the config was last (re)loaded, in order: a worker
   * restarted after a crash gets them replayed, so that every worker balances alike.
   */
  private upstreamChanges: { listener: string; change: UpstreamChange }[] = [];

  constructor(
    private readonly snapshot: ConfigSnapshot,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const count = workerCount(this.snapshot);
    this.logger.info({ event: 'workers', workers: count }, `starting ${count} workers`);
    for (let i = 0; i < count; i++) this.fork();
    handleSignals({ reload: () => this.reload(), shutdown: () => this.shutdown() }, this.logger);
    if (this.snapshot.admin) {
      await new AdminServer({ listen: this.snapshot.admin.listen, token: this.snapshot.admin.token, runtime: this, logger: this.logger }).start();
    }
  }

  private fork(replay = false): void {
    const worker = cluster.fork();
    // Messages sent before the worker listens for them would be lost: replay once it is ready.
    if (replay) worker.on('message', (message: { type?: string }) => message?.type === READY && void this.replayUpstreamChanges(worker));
    const bornAt = Date.now();
    worker.on('message', (message: Response) => {
      if (message?.type !== RESPONSE) return;
      this.pending.get(message.id)?.(message.result);
    });
    worker.on('exit', (code, signal) => {
      if (this.stopping) return;
      if (Date.now() - bornAt > RESTART_BACKOFF.stableAfterMs) this.backoffMs = RESTART_BACKOFF.baseMs;
      this.logger.error({ event: 'worker_exit', worker: worker.id, code, signal, restart_in_ms: this.backoffMs }, 'worker died; restarting');
      setTimeout(() => this.fork(true), this.backoffMs).unref();
      this.backoffMs = Math.min(this.backoffMs * 2, RESTART_BACKOFF.maxMs);
    });
  }

  private async replayUpstreamChanges(worker: Worker): Promise<void> {
    const changes = [...this.upstreamChanges];
    if (changes.length === 0) return;
    for (const { listener, change } of changes) {
      const [result] = await this.askWorkers<UpstreamChangeResult>([worker], 'upstream_change', listener, change);
      if (result?.ok === false) {
        this.logger.warn({ event: 'upstream_replay_failed', worker: worker.id, listener, change, error: result.error }, 'a restarted worker refused a run-time upstream change');
      }
    }
    this.logger.info({ event: 'upstream_replay', worker: worker.id, changes: changes.length }, `run-time upstream changes replayed to restarted worker ${worker.id}`);
  }

  /** Asks every live worker; answers that do not come within the timeout are left out. */
  private ask<T>(op: Operation, ...args: unknown[]): Promise<T[]> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected() && !w.isDead());
    return this.askWorkers(workers, op, ...args);
  }

  private askWorkers<T>(workers: Worker[], op: Operation, ...args: unknown[]): Promise<T[]> {
    return Promise.all(
      workers.map(
        (worker) =>
          new Promise<T | undefined>((resolve) => {
            const id = ++this.nextRequest;
            // Settles once: with the answer, or with nothing on a timeout or the worker dying.
            const settle = (result: T | undefined): void => {
              clearTimeout(timer);
              worker.off('exit', giveUp);
              this.pending.delete(id);
              resolve(result);
            };
            const giveUp = (): void => settle(undefined);
            const timer = setTimeout(giveUp, IPC_TIMEOUT_MS);
            worker.once('exit', giveUp);
            this.pending.set(id, (result) => settle(result as T));
            worker.send({ type: REQUEST, id, op, args } satisfies Request);
          }),
      ),
    ).then((answers) => answers.filter((a): a is Awaited<T> => a !== undefined) as T[]);
  }

  async stats(): Promise<StatsSnapshot> {
    const parts = await this.ask<StatsSnapshot>('stats');
    return { ...mergeStats(parts), version: VERSION, workers: parts.length };
  }

  async connections(): Promise<ConnectionInfo[]> {
    return (await this.ask<ConnectionInfo[]>('connections')).flat();
  }

  async closeConnection(id: string): Promise<boolean> {
    return (await this.ask<boolean>('close', id)).some(Boolean);
  }

  async reload(): Promise<ReloadResult> {
    const results = await this.ask<ReloadResult>('reload');
    const failed = results.find((r): r is { ok: false; error: string } => !r.ok);
    // The workers now run the file's upstreams (the file wins): nothing left to replay.
    if (!failed) this.upstreamChanges = [];
    return failed ?? { ok: true };
  }

  /** The first worker's list, with each endpoint's active connections summed over all workers. */
  async listUpstreams(listener: string): Promise<UpstreamView[] | undefined> {
    const [first, ...others] = (await this.ask<UpstreamView[] | null>('upstreams', listener)).filter((list): list is UpstreamView[] => list !== null);
    if (first === undefined) return undefined;
    for (const list of others) {
      for (const upstream of list) {
        for (const endpoint of upstream.endpoints) {
          const same = first.find((u) => u.address === upstream.address)?.endpoints.find((e) => e.address === endpoint.address);
          if (same) same.active += endpoint.active;
        }
      }
    }
    return first;
  }

  /** Every worker applies the change; they hold the same pools, so they answer alike. */
  async changeUpstream(listener: string, change: UpstreamChange): Promise<UpstreamChangeResult> {
    const results = await this.ask<UpstreamChangeResult>('upstream_change', listener, change);
    const applied = results.find((result) => result.ok);
    const refused = results.find((result) => !result.ok);
    if (applied) {
      this.upstreamChanges.push({ listener, change });
      if (refused) this.logger.warn({ event: 'upstream_change_partial', listener, change, refused }, 'a run-time upstream change was refused by some workers only');
    }
    return applied ?? refused ?? { ok: false, code: 'no_workers', error: 'no worker answered' };
  }

  async upstreamAction(listener: string, address: string, action: UpstreamAction): Promise<UpstreamActionResult> {
    const results = await this.ask<UpstreamActionResult>('upstream', listener, address, action);
    return results.includes('ok') ? 'ok' : (results[0] ?? 'unknown_listener');
  }

  async ready(): Promise<boolean> {
    const results = await this.ask<boolean>('ready');
    return results.length > 0 && results.every(Boolean);
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    const parts = await this.ask<object[]>('metrics');
    const registry = AggregatorRegistry.aggregate(parts);
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    const exited = Object.values(cluster.workers ?? {}).map(
      (worker) => new Promise<void>((resolve) => (worker!.isDead() ? resolve() : worker!.once('exit', () => resolve()))),
    );
    await this.ask('shutdown');
    await Promise.all(exited);
  }
}
