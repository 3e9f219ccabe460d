/**
 * toxiproxy's proxies over tcpproxy's runtime: each enabled proxy is a listener created at
 * run time (one upstream, no retries, no idle timeout), named after the proxy, so that it
 * shows in metrics, logs and the dashboard. Its toxics are a LiveFilters object that the
 * proxy keeps while it is disabled (its listener removed) and hands back when it is enabled.
 *
 * Changes are serialized: each one runs after the previous one has finished binding or
 * closing, as toxiproxy's collection lock does.
 */
import type { Logger } from 'pino';
import { formatHostPort, parseHostPort } from '../net/address.js';
import { ConfigError } from '../config/load.js';
import { LiveFilters } from '../pipeline/live.js';
import { ApiError, PROXY_EXISTS, PROXY_NOT_FOUND, TOXIC_EXISTS, TOXIC_NOT_FOUND } from './api-error.js';
import { parseNewToxic, parseToxicUpdate, toxicJson, type ToxicJson } from './toxics.js';

/** What the collection needs from the runtime (ProxyRuntime implements it). */
export interface ListenerHost {
  addListener(raw: unknown, options: { live?: LiveFilters }): Promise<{ address: string; port: number }>;
  removeListener(name: string): Promise<boolean>;
  /** Whether a listener of that name runs (one from the config counts too). */
  hasListener(name: string): boolean;
}

export interface ProxyJson {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
  readonly toxics: ToxicJson[];
}

interface ProxyInput {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
}

class ToxicProxy {
  enabled = false;
  readonly toxics = new LiveFilters(true);

  constructor(
    readonly name: string,
    /** As given, then the address bound (toxiproxy reports the port that port 0 got). */
    public listen: string,
    public upstream: string,
  ) {}

  json(): ProxyJson {
    return { name: this.name, listen: this.listen, upstream: this.upstream, enabled: this.enabled, toxics: this.toxics.list().map(toxicJson) };
  }
}

export class ToxiproxyCollection {
  private readonly proxies = new Map<string, ToxicProxy>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly host: ListenerHost,
    private readonly logger: Logger,
  ) {}

  list(): ProxyJson[] {
    return [...this.proxies.values()].map((proxy) => proxy.json());
  }

  show(name: string): ProxyJson {
    return this.proxy(name).json();
  }

  create(body: unknown): Promise<ProxyJson> {
    const input = readProxy(body, undefined);
    return this.serialized(async () => {
      if (this.proxies.has(input.name) || this.host.hasListener(input.name)) throw PROXY_EXISTS();
      const proxy = new ToxicProxy(input.name, input.listen, input.upstream);
      if (input.enabled) await this.start(proxy);
      this.proxies.set(proxy.name, proxy);
      this.logger.info({ event: 'toxiproxy', action: 'create', proxy: proxy.name, listen: proxy.listen, upstream: proxy.upstream }, 'proxy created');
      return proxy.json();
    });
  }

  /**
   * POST /populate: every entry is checked before anything changes; then each is created,
   * kept (same listen and upstream) or replaced. A failure part-way answers with what was done.
   */
  populate(body: unknown): Promise<{ proxies: ProxyJson[]; error?: ApiError }> {
    if (!Array.isArray(body)) throw ApiError.badBody('expected a JSON array of proxies');
    const inputs = body.map((entry, index) => readProxy(entry, index + 1));
    const seen = new Set<string>();
    for (const input of inputs) {
      if (seen.has(input.name)) throw ApiError.badBody(`duplicate proxy name "${input.name}"`);
      seen.add(input.name);
    }
    return this.serialized(async () => {
      const done: ProxyJson[] = [];
      for (const input of inputs) {
        try {
          done.push(await this.addOrReplace(input));
        } catch (error) {
          return { proxies: done, error: asApiError(error) };
        }
      }
      return { proxies: done };
    });
  }

  /** POST /proxies/{name}: a new listen or upstream restarts it; `enabled` starts or stops it. */
  update(name: string, body: unknown): Promise<ProxyJson> {
    return this.serialized(async () => {
      const proxy = this.proxy(name);
      const input = readUpdate(proxy, body);
      if (input.listen !== proxy.listen || input.upstream !== proxy.upstream) {
        await this.stop(proxy);
        proxy.listen = input.listen;
        proxy.upstream = input.upstream;
      }
      if (input.enabled && !proxy.enabled) await this.start(proxy);
      else if (!input.enabled && proxy.enabled) await this.stop(proxy);
      this.logger.info(
        { event: 'toxiproxy', action: 'update', proxy: name, listen: proxy.listen, upstream: proxy.upstream, enabled: proxy.enabled },
        'proxy updated',
      );
      return proxy.json();
    });
  }

  remove(name: string): Promise<void> {
    return this.serialized(async () => {
      const proxy = this.proxy(name);
      await this.stop(proxy);
      this.proxies.delete(name);
      this.logger.info({ event: 'toxiproxy', action: 'delete', proxy: name }, 'proxy deleted');
    });
  }

  /** POST /reset: every proxy enabled, every toxic removed. */
  reset(): Promise<void> {
    return this.serialized(async () => {
      for (const proxy of this.proxies.values()) {
        if (!proxy.enabled) await this.start(proxy);
        proxy.toxics.clear();
      }
      this.logger.info({ event: 'toxiproxy', action: 'reset' }, 'proxies enabled, toxics removed');
    });
  }

  toxics(name: string): ToxicJson[] {
    return this.proxy(name).toxics.list().map(toxicJson);
  }

  toxic(name: string, toxic: string): ToxicJson {
    const found = this.proxy(name).toxics.get(toxic);
    if (!found) throw TOXIC_NOT_FOUND();
    return toxicJson(found);
  }

  addToxic(name: string, body: unknown): ToxicJson {
    const proxy = this.proxy(name);
    const toxic = parseNewToxic(body);
    if (proxy.toxics.get(toxic.name)) throw TOXIC_EXISTS();
    proxy.toxics.add(toxic);
    this.logger.info({ event: 'toxiproxy', action: 'add_toxic', proxy: name, toxic: toxic.spec }, 'toxic added');
    return toxicJson(toxic);
  }

  updateToxic(name: string, toxicName: string, body: unknown): ToxicJson {
    const proxy = this.proxy(name);
    const current = proxy.toxics.get(toxicName);
    if (!current) throw TOXIC_NOT_FOUND();
    const updated = parseToxicUpdate(toxicJson(current), body);
    proxy.toxics.replace(updated);
    this.logger.info({ event: 'toxiproxy', action: 'update_toxic', proxy: name, toxic: updated.spec }, 'toxic updated');
    return toxicJson(updated);
  }

  removeToxic(name: string, toxicName: string): void {
    if (!this.proxy(name).toxics.remove(toxicName)) throw TOXIC_NOT_FOUND();
    this.logger.info({ event: 'toxiproxy', action: 'remove_toxic', proxy: name, toxic: toxicName }, 'toxic removed');
  }

  /** Shutdown: the listeners go with the runtime; this only forgets them. */
  clear(): void {
    this.proxies.clear();
  }

  private proxy(name: string): ToxicProxy {
    const proxy = this.proxies.get(name);
    if (!proxy) throw PROXY_NOT_FOUND();
    return proxy;
  }

  private async addOrReplace(input: ProxyInput): Promise<ProxyJson> {
    const existing = this.proxies.get(input.name);
    if (existing?.upstream === input.upstream && (existing.listen === input.listen || sameAddress(existing.listen, input.listen))) {
      return existing.json();
    }
    if (existing) {
      await this.stop(existing);
      this.proxies.delete(existing.name);
    } else if (this.host.hasListener(input.name)) {
      throw PROXY_EXISTS();
    }
    const proxy = new ToxicProxy(input.name, input.listen, input.upstream);
    if (input.enabled) await this.start(proxy);
    this.proxies.set(proxy.name, proxy);
    return proxy.json();
  }

  private async start(proxy: ToxicProxy): Promise<void> {
    const raw = {
      name: proxy.name,
      listen: listenAddress(proxy.listen),
      upstreams: [upstreamAddress(proxy.upstream)],
      // toxiproxy dials once and never closes an idle connection.
      connect_retries: 0,
      idle_timeout: 0,
      // Toxics reach every open connection.
      live_filters: true,
    };
    let bound;
    try {
      bound = await this.host.addListener(raw, { live: proxy.toxics });
    } catch (error) {
      throw asApiError(error);
    }
    proxy.listen = formatHostPort(bound.address, bound.port);
    proxy.enabled = true;
  }

  private async stop(proxy: ToxicProxy): Promise<void> {
    if (!proxy.enabled) return;
    proxy.enabled = false;
    await this.host.removeListener(proxy.name);
  }

  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function readProxy(body: unknown, position: number | undefined): ProxyInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw ApiError.badBody('expected a JSON object');
  const input = body as Record<string, unknown>;
  const at = position === undefined ? '' : ` at proxy ${position}`;
  const name = optionalString(input, 'name') ?? '';
  const upstream = optionalString(input, 'upstream') ?? '';
  if (name === '') throw ApiError.missingField(`name${at}`);
  if (upstream === '') throw ApiError.missingField(`upstream${at}`);
  return { name, upstream, listen: optionalString(input, 'listen') ?? '', enabled: optionalBoolean(input, 'enabled') ?? true };
}

function readUpdate(proxy: ToxicProxy, body: unknown): ProxyInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw ApiError.badBody('expected a JSON object');
  const input = body as Record<string, unknown>;
  return {
    name: proxy.name,
    listen: optionalString(input, 'listen') ?? proxy.listen,
    upstream: optionalString(input, 'upstream') ?? proxy.upstream,
    enabled: optionalBoolean(input, 'enabled') ?? proxy.enabled,
  };
}

function optionalString(input: Record<string, unknown>, key: string): string | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw ApiError.badBody(`${key}: expected a string`);
  return value;
}

function optionalBoolean(input: Record<string, unknown>, key: string): boolean | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw ApiError.badBody(`${key}: expected true or false`);
  return value;
}

/**
 * toxiproxy's listen strings in tcpproxy's form: "" and ":PORT" listen on every interface
 * (0.0.0.0), "localhost" on 127.0.0.1 (Go's choice for it); no port means port 0.
 */
function listenAddress(listen: string): string {
  if (listen === '') return '127.0.0.1:0';
  if (listen.startsWith(':')) return `0.0.0.0${listen}`;
  if (listen.startsWith('localhost:')) return `127.0.0.1${listen.slice('localhost'.length)}`;
  return listen;
}

/** ":PORT" dials this machine, as Go's net.Dial does. */
function upstreamAddress(upstream: string): string {
  return upstream.startsWith(':') ? `127.0.0.1${upstream}` : upstream;
}

function sameAddress(bound: string, given: string): boolean {
  const a = parseHostPort(bound, { allowPortZero: true });
  const b = parseHostPort(listenAddress(given), { allowPortZero: true });
  return typeof a !== 'string' && typeof b !== 'string' && a.port === b.port && b.port !== 0 && a.host === b.host;
}

/** Bad addresses are the request's fault (400); a listen that fails is toxiproxy's 500. */
function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ConfigError) return ApiError.badBody(error.problems.join('; '));
  return new ApiError((error as Error).message, 500);
}
