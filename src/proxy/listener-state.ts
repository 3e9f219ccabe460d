/**
 * The part of a listener that outlives config snapshots (see listener-context.ts): what a
 * reload must neither lose nor reset. It changes plans in one step, apply(), which cannot
 * fail: everything that could was done when the plan was built.
 */
import { TcpProxyError } from '../errors/errors.js';
import type { ConnectionIds } from './connection-ids.js';
import { AdmissionQueue } from '../admission/admission-queue.js';
import { ConnectionLimits, type ConnectionLimitOptions } from '../admission/limits.js';
import type { ListenerConfig } from '../config/load.js';
import { LiveFilters } from '../pipeline/live.js';
import type { Bridge } from './bridge.js';
import type { ListenerContext, PlannedPool } from './listener-context.js';

export class ListenerState {
  /** Open connections, whatever plan they started with (admin API, shutdown). */
  readonly connections = new Set<Bridge>();
  /** Concurrent-connection counts: a new plan's limits apply to the connections already open. */
  readonly limits = new ConnectionLimits();
  /** Clients over a limit with `on_limit: queue`. */
  readonly waiting = new AdmissionQueue(this.limits, { maxSize: 0 });
  /** Filters changed at run time (toxics, admin API). */
  readonly live: LiveFilters;
  #context: ListenerContext | undefined;

  /** `live`: a listener created at run time brings its own (a toxiproxy proxy keeps its toxics while disabled). */
  constructor(
    readonly name: string,
    /** The process's connection ids (shared by every listener: an id names one connection). */
    readonly ids: ConnectionIds,
    live?: LiveFilters,
  ) {
    this.live = live ?? new LiveFilters();
  }

  /** The plan in force: what new connections get. A listener is bound only once a plan is applied. */
  get context(): ListenerContext {
    if (this.#context === undefined) throw new TcpProxyError('internal', `listener "${this.name}" has no plan applied yet`);
    return this.#context;
  }

  /** The plan in force, if one was applied (a plan being built reads it). */
  get applied(): ListenerContext | undefined {
    return this.#context;
  }

  /** The pools of the plan in force, by route: a new plan keeps those whose route it keeps. */
  get pools(): ReadonlyMap<string, PlannedPool> {
    return this.#context?.pools ?? new Map();
  }

  /**
   * The swap: from now on new connections get `context` (built for this state), and the
   * state takes its settings. Pools of routes the plan no longer has stop their timers and
   * checks; their connections and queued clients finish as they are.
   */
  apply(context: ListenerContext): void {
    if (context.state !== this) throw new TcpProxyError('internal', `a plan for listener "${context.name}" applied to "${this.name}"`);
    const { config } = context;
    const previous = this.pools;
    this.limits.reconfigure(limitOptions(config));
    this.waiting.maxSize = config.max_queue;
    context.shared?.configure({
      ...limitOptions(config),
      newConnectionsPerIp: config.new_connections_per_ip && { limit: config.new_connections_per_ip.limit, perMs: config.new_connections_per_ip.per },
    });
    this.live.always = config.live_filters;
    for (const { pool, queue, plan } of context.pools.values()) {
      pool.apply(plan);
      queue.reconfigure({ maxSize: config.max_queue, timeoutMs: config.queue_timeout });
    }
    for (const [route, { pool }] of previous) if (context.pools.get(route)?.pool !== pool) pool.close();
    this.#context = context;
  }

  /** Gone from the config: pools stop watching; connections and queued clients finish as they are. */
  retire(): void {
    for (const { pool } of this.pools.values()) pool.close();
  }

  /** For good (shutdown, listener removed): queued clients are refused, pools stop watching. */
  close(): void {
    this.waiting.close();
    for (const { pool, queue } of this.pools.values()) {
      queue.close();
      pool.close();
    }
  }
}

export function limitOptions(config: ListenerConfig): ConnectionLimitOptions {
  return {
    ...(config.max_connections !== undefined && { maxConnections: config.max_connections }),
    ...(config.max_connections_per_ip !== undefined && { maxConnectionsPerIp: config.max_connections_per_ip }),
  };
}
