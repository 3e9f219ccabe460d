/**
 * Multi-core: `workers: N|auto` forks N worker processes with node:cluster. Each worker
 * runs the whole proxy on the same listeners; the kernel spreads accepts across them
 * (SCHED_NONE: every worker accepts on the shared socket itself). The primary runs the
 * admin endpoint and answers it by asking every worker over IPC and merging the answers
 * (metrics, stats, connection lists); it forwards reload and shutdown to all of them and
 * restarts a worker that dies, with back-off.
 *
 * Upgrade (SIGUSR2, POST /api/upgrade): each worker in turn is replaced by a freshly forked
 * one, which loads the code now on disk (and reads the config file as it is now). Only once
 * the new worker has bound every listener is the old one told to drain: it stops accepting,
 * lets its connections finish within shutdown_timeout, then exits. The listening sockets are
 * never closed meanwhile: the primary holds each shared listening handle for as long as any
 * worker uses it, and the kernel keeps queued connections for whichever worker accepts next.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type {
  AdminRuntime,
  ConnectionInfo,
  ReloadResult,
  StatsSnapshot,
  UpgradeResult,
  UpstreamAction,
  UpstreamActionResult,
  UpstreamChange,
  UpstreamChangeResult,
  UpstreamView,
} from '../admin/admin-runtime.js';
import { mergeStats } from '../admin/stats.js';
import type { ConfigSnapshot } from '../config/load.js';
import type { ProcessLogs } from '../observability/logger.js';
import { ProxyRuntime } from './runtime.js';
import { handleSignals } from './signals.js';
import { VERSION } from '../observability/version.js';
import { TcpProxyError } from '../errors/errors.js';
import { requireCommonJs } from '../deps/commonjs.js';

const REQUEST = 'tcpproxy:request';
const RESPONSE = 'tcpproxy:response';
/** A worker's first word: every listener is bound (what an upgrade waits for; run-time changes are replayed then). */
const STARTED = 'tcpproxy:started';
/** A worker that does not answer within this long is left out of an aggregate answer. */
const IPC_TIMEOUT_MS = 5_000;
const RESTART_BACKOFF = { baseMs: 500, maxMs: 30_000, stableAfterMs: 60_000 };
/** How long a new worker of an upgrade may take to bind its listeners. */
const UPGRADE_START_TIMEOUT_MS = 60_000;
/** Past shutdown_timeout, how long a draining worker gets before it is killed. */
const RETIRE_GRACE_MS = 15_000;

type Operation = 'stats' | 'connections' | 'close' | 'reload' | 'upstream' | 'upstreams' | 'upstream_change' | 'metrics' | 'ready' | 'shutdown' | 'reopen';
interface Request {
  type: typeof REQUEST;
  id: number;
  op: Operation;
  args: unknown[];
}
interface Response {
  type: typeof RESPONSE;
  id: number;
  result: unknown;
}
interface Started {
  type: typeof STARTED;
}

/** What the primary knows of each worker it forked. */
interface WorkerState {
  readonly bornAt: number;
  /** Replaced by an upgrade: draining, and not to be restarted when it exits. */
  retiring: boolean;
  /** An upgrade's new worker is restarted on a crash only once it has started. */
  restartOnExit: boolean;
}

export function workerCount(snapshot: ConfigSnapshot): number {
  return snapshot.workers === 'auto' ? availableParallelism() : snapshot.workers;
}

/** Resolves once every worker has bound every listener (in the primary) or once this worker has. */
export async function runWorkers(snapshot: ConfigSnapshot, logs: ProcessLogs, reloadSource: (() => Promise<ConfigSnapshot>) | undefined): Promise<void> {
  if (cluster.isWorker) return runWorker(snapshot, logs, reloadSource);
  await new Primary(snapshot, logs).start();
}

/** A worker: the ordinary runtime, without the admin endpoint, answering the primary. */
async function runWorker(snapshot: ConfigSnapshot, logs: ProcessLogs, reloadSource: (() => Promise<ConfigSnapshot>) | undefined): Promise<void> {
  const { admin: _admin, ...withoutAdmin } = snapshot;
  const runtime = new ProxyRuntime({ ...withoutAdmin, admin: undefined }, logs.logger.child({ worker: cluster.worker!.id }), reloadSource, {
    connectionIdPrefix: `${cluster.worker!.id}-`,
  });
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
    metrics: () => runtime.proxyMetrics.json(),
    ready: () => runtime.ready(),
    reopen: () => logs.reopen(),
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
  // `pkill -USR1 tcpproxy` reaches workers too: reopening twice is harmless, and a listener
  // here keeps Node from starting its inspector on SIGUSR1. Upgrades are the primary's.
  process.on('SIGUSR1', () => logs.reopen());
  process.on('SIGUSR2', () => undefined);
  started = runtime.start();
  await started;
  process.send?.({ type: STARTED } satisfies Started);
}

class Primary implements AdminRuntime {
  private nextRequest = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();
  private readonly states = new Map<Worker, WorkerState>();
  private stopping = false;
  private backoffMs = RESTART_BACKOFF.baseMs;
  /**
   * Run-time upstream changes since the config was last (re)loaded, in order: a worker
   * restarted after a crash gets them replayed, so that every worker balances alike.
   */
  private upstreamChanges: { listener: string; change: UpstreamChange }[] = [];
  private upgrading: Promise<UpgradeResult> | undefined;
  private stopHandler: (() => void) | undefined;
  private onWorkerStarted: () => void = () => undefined;
  private readonly logger: Logger;

  constructor(
    private readonly snapshot: ConfigSnapshot,
    private readonly logs: ProcessLogs,
  ) {
    this.logger = logs.logger;
  }

  /** Resolves once the admin endpoint and every first worker's listeners are bound. */
  async start(): Promise<void> {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const count = workerCount(this.snapshot);
    this.logger.info({ event: 'workers', workers: count }, `starting ${count} workers`);
    // Counted across restarts: a first worker that dies before binding is replaced, and its successor counts.
    const everyWorkerStarted = new Promise<void>((resolve) => {
      let started = 0;
      this.onWorkerStarted = () => {
        if (++started === count) resolve();
      };
    });
    for (let i = 0; i < count; i++) this.fork(true);
    const signals = handleSignals(
      {
        reload: () => this.reload(),
        shutdown: () => this.shutdown(),
        reopenLogs: () => {
          this.logs.reopen();
          void this.ask('reopen');
        },
        upgrade: () => this.upgrade(),
      },
      this.logger,
    );
    this.stopHandler = () => signals.stop('POST /api/stop');
    if (this.snapshot.admin) {
      const { AdminServer } = await import('../admin/server.js');
      await new AdminServer({ listen: this.snapshot.admin.listen, token: this.snapshot.admin.token, runtime: this, logger: this.logger }).start();
    }
    await everyWorkerStarted;
  }

  private fork(restartOnExit: boolean): Worker {
    const worker = cluster.fork();
    const state: WorkerState = { bornAt: Date.now(), retiring: false, restartOnExit };
    this.states.set(worker, state);
    worker.on('message', (message: Response | Started) => {
      if (message?.type === STARTED) {
        this.onWorkerStarted();
        // A worker restarted after a crash, or forked by an upgrade, balances like the others.
        // Messages sent before the worker listens for them would be lost: replay once it runs.
        if (this.upstreamChanges.length > 0) void this.replayUpstreamChanges(worker);
      }
      if (message?.type !== RESPONSE) return;
      this.pending.get(message.id)?.(message.result);
    });
    worker.on('exit', (code, signal) => {
      this.states.delete(worker);
      if (this.stopping) return;
      if (state.retiring) {
        this.logger.info({ event: 'worker_retired', worker: worker.id, pid: worker.process.pid, code, signal }, 'old worker drained and exited');
        return;
      }
      if (!state.restartOnExit) return; // an upgrade's new worker that never started: the upgrade reports it
      if (Date.now() - state.bornAt > RESTART_BACKOFF.stableAfterMs) this.backoffMs = RESTART_BACKOFF.baseMs;
      this.logger.error({ event: 'worker_exit', worker: worker.id, code, signal, restart_in_ms: this.backoffMs }, 'worker died; restarting');
      setTimeout(() => this.fork(true), this.backoffMs).unref();
      this.backoffMs = Math.min(this.backoffMs * 2, RESTART_BACKOFF.maxMs);
    });
    return worker;
  }

  /** The workers serving new connections: alive and not draining away after an upgrade. */
  private serving(): Worker[] {
    return this.live().filter((worker) => this.states.get(worker)?.retiring !== true);
  }

  private live(): Worker[] {
    return Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected() && !w.isDead());
  }

  // -- upgrade -------------------------------------------------------------------------

  upgrade(): Promise<UpgradeResult> {
    // Asked again while one runs (a second SIGUSR2): the running one answers both.
    this.upgrading ??= this.replaceWorkers().finally(() => {
      this.upgrading = undefined;
    });
    return this.upgrading;
  }

  private async replaceWorkers(): Promise<UpgradeResult> {
    const old = this.serving();
    const replaced: { old_pid: number; new_pid: number }[] = [];
    for (const worker of old) {
      if (this.stopping) return this.upgradeFailed('shutting down', replaced.length, old.length);
      let fresh: Worker;
      try {
        fresh = await this.forkStarted();
      } catch (error) {
        return this.upgradeFailed((error as Error).message, replaced.length, old.length);
      }
      this.retire(worker);
      replaced.push({ old_pid: worker.process.pid!, new_pid: fresh.process.pid! });
      this.logger.info({ event: 'upgrade', old_pid: worker.process.pid, new_pid: fresh.process.pid }, 'worker replaced; the old one drains');
    }
    this.logger.info({ event: 'upgrade', ok: true, replaced: replaced.length }, 'upgrade complete');
    return { ok: true, replaced };
  }

  private upgradeFailed(why: string, done: number, total: number): UpgradeResult {
    const error = `${why} (${done} of ${total} workers replaced; the others keep running the old code)`;
    this.logger.error({ event: 'upgrade', ok: false, error }, 'upgrade stopped');
    return { ok: false, error };
  }

  /** Forks a worker and resolves once it has bound its listeners; rejects if it exits or hangs first. */
  private forkStarted(): Promise<Worker> {
    const worker = this.fork(false);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        worker.kill('SIGKILL');
        reject(new TcpProxyError('worker_upgrade', `the new worker did not bind its listeners within ${UPGRADE_START_TIMEOUT_MS / 1000}s`));
      }, UPGRADE_START_TIMEOUT_MS);
      const onMessage = (message: Started): void => {
        if (message?.type !== STARTED) return;
        cleanup();
        this.states.get(worker)!.restartOnExit = true;
        resolve(worker);
      };
      const onExit = (code: number | null, signal: string | null): void => {
        cleanup();
        reject(new TcpProxyError('worker_upgrade', `the new worker exited (${signal ?? `code ${code}`}) before binding its listeners: see its log lines`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        worker.off('message', onMessage);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.once('exit', onExit);
    });
  }

  /** Tells a replaced worker to drain and exit, and makes sure it does. */
  private retire(worker: Worker): void {
    this.states.get(worker)!.retiring = true;
    const kill = setTimeout(() => worker.kill('SIGKILL'), this.snapshot.shutdown_timeout + RETIRE_GRACE_MS).unref();
    worker.once('exit', () => clearTimeout(kill));
    void this.askWorkers([worker], 'shutdown');
  }

  requestStop(): void {
    this.stopHandler?.();
  }

  private async replayUpstreamChanges(worker: Worker): Promise<void> {
    const changes = [...this.upstreamChanges];
    if (changes.length === 0) return;
    for (const { listener, change } of changes) {
      const [result] = await this.askWorkers<UpstreamChangeResult>([worker], 'upstream_change', listener, change);
      if (result?.ok === false) {
        this.logger.warn(
          { event: 'upstream_replay_failed', worker: worker.id, listener, change, error: result.error },
          'a restarted worker refused a run-time upstream change',
        );
      }
    }
    this.logger.info(
      { event: 'upstream_replay', worker: worker.id, changes: changes.length },
      `run-time upstream changes replayed to restarted worker ${worker.id}`,
    );
  }

  /** Asks every live worker; answers that do not come within the timeout are left out. */
  private ask<T>(op: Operation, ...args: unknown[]): Promise<T[]> {
    return this.askWorkers(this.live(), op, ...args);
  }

  private askWorkers<T>(workers: readonly Worker[], op: Operation, ...args: unknown[]): Promise<T[]> {
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
    return {
      ...mergeStats(parts),
      version: VERSION,
      workers: parts.length,
      pid: process.pid,
      uptime_s: Math.round(process.uptime()),
      worker_pids: parts.map((part) => part.pid).filter((pid): pid is number => pid !== undefined),
      ...(parts[0]?.listening && { listening: parts[0].listening }),
    };
  }

  async connections(): Promise<ConnectionInfo[]> {
    return (await this.ask<ConnectionInfo[]>('connections')).flat();
  }

  async closeConnection(id: string): Promise<boolean> {
    return (await this.ask<boolean>('close', id)).some(Boolean);
  }

  async reload(): Promise<ReloadResult> {
    // Draining workers refuse reloads ("shutting down"), and their connections keep their config anyway.
    const results = await this.askWorkers<ReloadResult>(this.serving(), 'reload');
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
      if (refused)
        this.logger.warn({ event: 'upstream_change_partial', listener, change, refused }, 'a run-time upstream change was refused by some workers only');
    }
    return applied ?? refused ?? { ok: false, code: 'no_workers', error: 'no worker answered' };
  }

  async upstreamAction(listener: string, address: string, action: UpstreamAction): Promise<UpstreamActionResult> {
    const results = await this.ask<UpstreamActionResult>('upstream', listener, address, action);
    return results.includes('ok') ? 'ok' : (results[0] ?? 'unknown_listener');
  }

  async ready(): Promise<boolean> {
    const results = await this.askWorkers<boolean>(this.serving(), 'ready');
    return results.length > 0 && results.every(Boolean);
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    const parts = await this.ask<object[]>('metrics');
    // Loaded on the first scrape, as the workers' own registries (observability/metrics.ts).
    const { AggregatorRegistry } = requireCommonJs('prom-client');
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
