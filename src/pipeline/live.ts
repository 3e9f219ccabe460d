/**
 * Live filters: a per-listener, mutable list of filters (toxiproxy's toxics, or filters
 * added through the admin API) that act on connections already flowing. It belongs to the
 * listener's long-lived state (carried from context to context across reloads, like its
 * open connections), not to a config snapshot.
 *
 * Each connection on the filtered path attaches its two FilterChains when it starts; from
 * then on, adding a live filter inserts a stage into the chains of every attached connection,
 * updating one replaces its stage in place, and removing one takes its stage out after
 * passing on what it held (Filter.flush), as toxiproxy does. Live stages sit after the
 * configured filters and before the capture of what is sent, in the order they were added.
 *
 * The plain path (bridge.ts reading in place, no per-chunk work) cannot be switched over
 * once running: a listener whose connections must see every change is "always live"
 * (toxiproxy proxies, `live_filters: true`); on any other listener, connections opened
 * while it has live filters take the filtered path and follow every later change, and
 * those opened before stay on the plain path, untouched.
 */
import type { FilterChain, StageHandle } from '../filters/chain.js';
import type { Direction, Filter, FilterContext } from '../filters/filter.js';
import { ConnectionFilterContext, emptyPipeline, type ConnectionContext, type DataPipeline, type DataPipelineFactory } from './pipeline.js';
import type { FilterPlan } from './plan.js';
import { TcpProxyError } from '../errors/errors.js';

/** A plan whose filter may carry state over from the one it replaces (limit_data's count). */
export interface LivePlan extends FilterPlan {
  create(context: FilterContext, previous?: Filter): Filter;
}

export interface LiveFilter {
  /** Unique within the listener. */
  readonly name: string;
  readonly plan: LivePlan;
  /** The probability that a connection gets it, drawn per connection (again on each update). */
  readonly toxicity: number;
  /** What the APIs show for it. */
  readonly spec: Readonly<Record<string, unknown>>;
  /** For one connection only (an on-demand capture of it). */
  readonly only?: string | undefined;
}

export class LiveFilters {
  private filters: LiveFilter[] = [];
  private readonly connections = new Set<LiveConnection>();

  /** `always`: every connection takes the filtered path, so that it follows every change (`live_filters`; a reload may change it). */
  constructor(public always = false) {}

  /** Whether a new connection takes the filtered path (decided once, when it starts). */
  get engaged(): boolean {
    return this.always || this.filters.length > 0;
  }

  list(): readonly LiveFilter[] {
    return this.filters;
  }

  get(name: string): LiveFilter | undefined {
    return this.filters.find((filter) => filter.name === name);
  }

  /** Appends it (the name must be new) and applies it to every attached connection. */
  add(filter: LiveFilter): void {
    if (this.get(filter.name)) throw new TcpProxyError('live_filter_exists', `live filter "${filter.name}" exists already`);
    this.filters = [...this.filters, filter];
    for (const connection of this.connections) connection.add(filter);
  }

  /** Replaces the filter of the same name, in its place, on every attached connection. */
  replace(filter: LiveFilter): boolean {
    const index = this.filters.findIndex((f) => f.name === filter.name);
    if (index === -1) return false;
    const old = this.filters[index]!;
    this.filters = this.filters.map((f, i) => (i === index ? filter : f));
    for (const connection of this.connections) connection.replace(old, filter);
    return true;
  }

  remove(name: string): boolean {
    const filter = this.get(name);
    if (!filter) return false;
    for (const connection of this.connections) connection.remove(filter);
    this.filters = this.filters.filter((f) => f !== filter);
    return true;
  }

  clear(): void {
    for (const filter of [...this.filters].reverse()) this.remove(filter.name);
  }

  /** Whether the connection is attached (on the filtered path), so that a live filter reaches it. */
  follows(connectionId: string): boolean {
    for (const connection of this.connections) if (connection.id === connectionId) return true;
    return false;
  }

  /** A connection's chains follow this list from now on, until the returned detach(). */
  attach(pipeline: DataPipeline, connection: ConnectionContext): () => void {
    const live = new LiveConnection(this, pipeline, connection);
    this.connections.add(live);
    for (const filter of this.filters) live.add(filter);
    return () => this.connections.delete(live);
  }
}

interface Applied {
  readonly chain: FilterChain;
  readonly stage: StageHandle;
  readonly filter: Filter;
  readonly direction: Direction;
}

/** One connection's live stages, per live filter (none where its toxicity draw said no). */
class LiveConnection {
  private readonly applied = new Map<LiveFilter, Applied[]>();

  constructor(
    private readonly owner: LiveFilters,
    private readonly pipeline: DataPipeline,
    private readonly connection: ConnectionContext,
  ) {}

  get id(): string {
    return this.connection.id;
  }

  add(filter: LiveFilter, previous: readonly Applied[] = []): void {
    const stages: Applied[] = [];
    this.applied.set(filter, stages);
    if (filter.only !== undefined && filter.only !== this.connection.id) return;
    if (Math.random() >= filter.toxicity) return;
    for (const direction of filter.plan.directions) {
      const chain = direction === 'to_upstream' ? this.pipeline.toUpstream : this.pipeline.toClient;
      let instance: Filter;
      try {
        const context = new ConnectionFilterContext(this.connection, direction, filter.name);
        instance = filter.plan.create(context, previous.find((p) => p.direction === direction)?.filter);
      } catch (error) {
        chain.abort(filter.name, error);
        return;
      }
      const stage = chain.insert(this.position(filter, direction, chain), { name: filter.name, filter: instance });
      stages.push({ chain, stage, filter: instance, direction });
    }
  }

  replace(old: LiveFilter, next: LiveFilter): void {
    const previous = this.applied.get(old) ?? [];
    this.remove(old);
    this.add(next, previous);
  }

  remove(filter: LiveFilter): void {
    for (const { chain, stage } of this.applied.get(filter) ?? []) chain.remove(stage);
    this.applied.delete(filter);
  }

  /** Live stages keep the list's order: before the stages of every filter listed after it. */
  private position(filter: LiveFilter, direction: Direction, chain: FilterChain): number {
    const list = this.owner.list();
    const rank = list.indexOf(filter);
    let after = 0;
    for (const [other, stages] of this.applied) {
      if (other !== filter && list.indexOf(other) > rank) after += stages.filter((s) => s.direction === direction).length;
    }
    return chain.length - this.pipeline.tailStages - after;
  }
}

/** The chains of a connection on the filtered path: the configured pipeline's, with the live filters attached. */
export function connectionPipeline(factory: DataPipelineFactory | undefined, live: LiveFilters | undefined, connection: ConnectionContext): DataPipeline {
  const base = factory?.create(connection) ?? emptyPipeline(connection);
  if (!live) return base;
  const detach = live.attach(base, connection);
  return {
    toUpstream: base.toUpstream,
    toClient: base.toClient,
    tailStages: base.tailStages,
    destroy() {
      detach();
      base.destroy();
    },
  };
}
