/**
 * The per-listener DataPipelineFactory: built once per config load from the listener's
 * `inspect` and `filters` (plugins imported, patterns compiled, the capture file opened),
 * it creates each connection's two FilterChains:
 *
 *   to_upstream: [capture: client sent] [log_data] filters... [capture: sent upstream]
 *   to_client:   [capture: upstream sent] [log_data] filters... [capture: sent to client]
 *
 * A listener with neither inspection nor filters gets no factory: the bridge keeps its
 * plain fast path. A filter factory that throws closes only its connection: the chain is
 * built failed and reports it to the FilteredDirection, which tells the bridge.
 */
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { acquireCaptureFile, releaseCaptureFile } from '../inspect/capture-files.js';
import { ConnectionCapture, type CapturedConnection } from '../inspect/capture.js';
import { ConnectionDataLog, type DataLogFormat } from '../inspect/data-log.js';
import type { PcapWriter } from '../inspect/pcap-writer.js';
import { FilterChain, type ChainStage } from '../filters/chain.js';
import type { Direction, FilterContext } from '../filters/filter.js';
import { planFilter, PluginOptionsError, type FilterPlan } from './plan.js';
import type { FilterSpec, InspectSpec } from '../config/filter-schema.js';
import { TcpProxyError } from '../errors/errors.js';

/** What the bridge tells the pipeline about one connection. */
export interface ConnectionContext extends CapturedConnection {
  readonly id: string;
  readonly listener: string;
  readonly log: Logger;
  close(reason: string, options?: { reset?: boolean }): void;
}

export interface DataPipeline {
  readonly toUpstream: FilterChain;
  readonly toClient: FilterChain;
  /** Stages that end each chain after the place of live filters (the capture of what is sent). */
  readonly tailStages: number;
  /** Releases both chains' filters and ends the connection in the capture; idempotent. */
  destroy(): void;
}

export interface DataPipelineFactory {
  create(connection: ConnectionContext): DataPipeline;
  /** Flushes and closes the capture file (when no other listener or config still uses it). */
  close(): Promise<void>;
}

export interface PipelineSpec {
  readonly inspect?: InspectSpec | undefined;
  readonly filters?: readonly FilterSpec[] | undefined;
}

export interface PipelineOptions {
  /** Where relative paths (plugins, the capture file) are resolved: the config file's folder. */
  readonly baseDir: string;
  readonly logger: Logger;
  readonly listener: string;
}

/**
 * A filter or capture file that cannot be set up: a configuration problem, key path first.
 * (Its name stays "Error": the message is what users see.)
 */
export class PipelineSetupError extends TcpProxyError {
  constructor(
    /** One `keyPath: detail` line per problem (a plugin's validator may find several). */
    readonly problems: readonly string[],
    cause: unknown,
  ) {
    super('filter_setup', problems.join('\n'), { cause });
    this.name = 'Error';
  }
}

/**
 * Returns undefined when nothing is configured. Throws a PipelineSetupError whose lines
 * start with the key path (`filters[2]: ...`, `filters[0].options.mode: ...`,
 * `inspect.capture: ...`) when a plugin cannot be loaded, rejects its options, or the
 * capture file cannot be opened.
 */
export async function buildPipelineFactory(spec: PipelineSpec, options: PipelineOptions): Promise<DataPipelineFactory | undefined> {
  const filters = spec.filters ?? [];
  const inspect = spec.inspect;
  if (filters.length === 0 && inspect?.log_data === undefined && inspect?.capture === undefined) return undefined;
  const plans = await loadPlans(filters, options.baseDir);
  let writer: PcapWriter | undefined;
  if (inspect?.capture !== undefined) {
    const path = resolve(options.baseDir, inspect.capture);
    const log = options.logger.child({ listener: options.listener });
    writer = await acquireCaptureFile(path, { maxBytes: inspect.capture_max_bytes, keep: inspect.capture_keep }, log).catch((error: unknown) => {
      throw new PipelineSetupError([`inspect.capture: cannot open ${path}: ${(error as Error).message}`], error);
    });
  }
  const dataLog = inspect?.log_data === undefined ? undefined : { format: inspect.log_data, limit: inspect.log_data_limit };
  return new PipelineFactory(plans, dataLog, writer);
}

/** `--check`: loads every filter's plan (plugins included) without building anything that runs. */
export async function checkFilters(filters: readonly FilterSpec[], baseDir: string): Promise<void> {
  await loadPlans(filters, baseDir);
}

function loadPlans(filters: readonly FilterSpec[], baseDir: string): Promise<FilterPlan[]> {
  return Promise.all(
    filters.map((filter, index) =>
      planFilter(filter, baseDir).catch((error: unknown) => {
        const problems = error instanceof PluginOptionsError ? error.problems.map((line) => `.${line}`) : [`: ${(error as Error).message}`];
        throw new PipelineSetupError(
          problems.map((rest) => `filters[${index}]${rest}`),
          error,
        );
      }),
    ),
  );
}

class PipelineFactory implements DataPipelineFactory {
  constructor(
    private readonly plans: readonly FilterPlan[],
    private readonly dataLog: { readonly format: DataLogFormat; readonly limit: number } | undefined,
    private writer: PcapWriter | undefined,
  ) {}

  create(connection: ConnectionContext): DataPipeline {
    const toUpstream: ChainStage[] = [];
    const toClient: ChainStage[] = [];
    const capture = this.writer ? new ConnectionCapture(this.writer, connection) : undefined;
    if (capture) {
      toUpstream.push({ name: 'capture', filter: capture.fromClient() });
      toClient.push({ name: 'capture', filter: capture.fromUpstream() });
    }
    if (this.dataLog) {
      const dataLog = new ConnectionDataLog(connection.log, connection.id, this.dataLog.format, this.dataLog.limit);
      toUpstream.push({ name: 'log_data', filter: dataLog.tap('to_upstream') });
      toClient.push({ name: 'log_data', filter: dataLog.tap('to_client') });
    }
    const failure = this.createFilters(connection, { to_upstream: toUpstream, to_client: toClient });
    if (capture) {
      toUpstream.push({ name: 'capture', filter: capture.toUpstream() });
      toClient.push({ name: 'capture', filter: capture.toClient() });
    }
    const { id, log } = connection;
    const chains = {
      to_upstream: new FilterChain(toUpstream, { connectionId: id, direction: 'to_upstream', log }),
      to_client: new FilterChain(toClient, { connectionId: id, direction: 'to_client', log }),
    };
    if (failure) chains[failure.direction].abort(failure.name, failure.error);
    return new ConnectionPipeline(chains.to_upstream, chains.to_client, capture);
  }

  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    if (writer) await releaseCaptureFile(writer);
  }

  /** Instantiates the configured filters in order; stops at the first factory that throws. */
  private createFilters(
    connection: ConnectionContext,
    stages: Record<Direction, ChainStage[]>,
  ): { name: string; direction: Direction; error: unknown } | undefined {
    for (const plan of this.plans) {
      for (const direction of plan.directions) {
        try {
          const filter = plan.create(new ConnectionFilterContext(connection, direction, plan.name));
          if (typeof filter?.data !== 'function') throw new TcpProxyError('plugin_load', 'the factory returned no filter (an object with a data() method)');
          stages[direction].push({ name: plan.name, filter });
        } catch (error) {
          return { name: plan.name, direction, error };
        }
      }
    }
    return undefined;
  }
}

/** Two chains without stages: a connection that only live filters (live.ts) act on. */
export function emptyPipeline(connection: ConnectionContext): DataPipeline {
  const { id, log } = connection;
  return new ConnectionPipeline(
    new FilterChain([], { connectionId: id, direction: 'to_upstream', log }),
    new FilterChain([], { connectionId: id, direction: 'to_client', log }),
    undefined,
  );
}

class ConnectionPipeline implements DataPipeline {
  readonly tailStages: number;

  constructor(
    readonly toUpstream: FilterChain,
    readonly toClient: FilterChain,
    private readonly capture: ConnectionCapture | undefined,
  ) {
    this.tailStages = capture ? 1 : 0;
  }

  destroy(): void {
    this.toUpstream.destroy();
    this.toClient.destroy();
    this.capture?.close();
  }
}

export class ConnectionFilterContext implements FilterContext {
  private logger: Logger | undefined;

  constructor(
    /** The whole connection's context (its addresses on both sides): for built-in taps. */
    readonly connection: ConnectionContext,
    readonly direction: Direction,
    private readonly filterName: string,
  ) {}

  get connectionId(): string {
    return this.connection.id;
  }

  get listener(): string {
    return this.connection.listener;
  }

  get client(): FilterContext['client'] {
    return this.connection.client;
  }

  get upstream(): FilterContext['upstream'] {
    return this.connection.upstream;
  }

  /** Created on first use: most filters never log, and a child logger per connection is not free. */
  get log(): Logger {
    this.logger ??= this.connection.log.child({ id: this.connection.id, filter: this.filterName, direction: this.direction });
    return this.logger;
  }

  close(reason = 'filter', options?: { reset?: boolean }): void {
    this.connection.close(reason, options);
  }
}
