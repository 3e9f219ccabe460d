/**
 * `tcpproxy toxiproxy-server`: a drop-in for toxiproxy's server. A ProxyRuntime without
 * configured listeners (proxies become listeners at run time) and toxiproxy's HTTP API on
 * HOST:PORT (default localhost:8474). `--config FILE` is toxiproxy's JSON list of proxies,
 * created at start as POST /populate would.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ConfigError, type ConfigSnapshot } from '../config/load.js';
import { configShape } from '../config/schema.js';
import { ProxyRuntime } from '../runtime/runtime.js';
import { ToxiproxyApi } from '../toxiproxy/api.js';
import { ApiError } from '../toxiproxy/api-error.js';
import { ToxiproxyCollection } from '../toxiproxy/proxies.js';

export interface ToxiproxyServerOptions {
  readonly host: string;
  readonly port: number;
  readonly configFile?: string | undefined;
  readonly logger: Logger;
}

export class ToxiproxyServer {
  readonly runtime: ProxyRuntime;
  readonly collection: ToxiproxyCollection;
  private readonly http: Server;

  constructor(private readonly options: ToxiproxyServerOptions) {
    this.runtime = new ProxyRuntime(emptySnapshot(), options.logger);
    this.collection = new ToxiproxyCollection(this.runtime, options.logger);
    const api = new ToxiproxyApi(this.collection, options.logger);
    this.http = createServer((req, res) => void api.handle(req, res));
    this.http.requestTimeout = 30_000;
  }

  /** Creates the proxies of --config (a bad file is a ConfigError), then serves the API. */
  async start(): Promise<AddressInfo> {
    await this.runtime.start();
    if (this.options.configFile !== undefined) await this.populateFrom(this.options.configFile);
    const { host, port } = this.options;
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, host, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    const bound = this.http.address() as AddressInfo;
    this.options.logger.info({ event: 'toxiproxy_listening', address: bound.address, port: bound.port }, `toxiproxy API on ${bound.address}:${bound.port}`);
    return bound;
  }

  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** SIGHUP has nothing to reload: the proxies live in memory, as in toxiproxy. */
  reload(): Promise<void> {
    return Promise.resolve();
  }

  async shutdown(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    await this.runtime.shutdown(0);
    this.collection.clear();
  }

  private async populateFrom(file: string): Promise<void> {
    let list: unknown;
    try {
      list = JSON.parse(await readFile(file, 'utf8'));
    } catch (error) {
      throw new ConfigError([`${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`]);
    }
    try {
      const { proxies, error } = await this.collection.populate(list);
      if (error) throw error;
      this.options.logger.info({ event: 'toxiproxy', action: 'populate', proxies: proxies.length, file }, 'proxies created from the config file');
    } catch (error) {
      throw new ConfigError([`${file}: ${error instanceof ApiError ? error.message : (error as Error).message}`]);
    }
  }
}

/** The runtime's settings with no listeners: every one is created through the API. */
function emptySnapshot(): ConfigSnapshot {
  const settings = configShape.omit({ listeners: true, admin: true }).parse({});
  return { ...settings, admin: undefined, listeners: [], file: undefined, baseDir: process.cwd() };
}
