import { formatHostPort } from '../net/address.js';

export type EndpointState = 'healthy' | 'down' | 'draining';

/** What the configuration says about the upstream an endpoint was resolved from. */
export interface EndpointSettings {
  upstream: string;
  weight: number;
  maxConnections?: number;
}

/**
 * One resolved ip:port of a configured upstream. The object's identity is what the
 * balancers and the connections holding it refer to, so a reload that keeps the same
 * label keeps the same object (and with it the state and counters).
 */
export class Endpoint {
  /** "127.0.0.1:9000" or "[::1]:9000": the form logs, metrics and the admin API show. */
  readonly label: string;
  readonly host: string;
  readonly port: number;
  /** What balancers and metrics see; the pool derives it from `reachable` and `drained`. */
  state: EndpointState = 'healthy';
  /** The health verdict (active checks, or passive detection without them). */
  reachable = true;
  /** Taken out of rotation by the admin API; independent of health. */
  drained = false;
  /** Connections currently using it. */
  active = 0;
  /** Connections ever handed out. */
  total = 0;
  /** Connect failures reported by the proxy. */
  failures = 0;
  /** Passive ejections in a row; sets the back-off, reset by a successful connect. */
  ejections = 0;
  /** Epoch ms at which a passively ejected endpoint is tried again, 0 when not ejected. */
  retryAt = 0;
  // Settings can change on reload while the identity (label) stays: private with getters
  // so that only reconfigure() changes them.
  #upstream = '';
  #weight = 1;
  #maxConnections = Infinity;

  constructor(host: string, port: number, settings: EndpointSettings) {
    this.host = host;
    this.port = port;
    this.label = formatHostPort(host, port);
    this.reconfigure(settings);
  }

  /** The configured address it was resolved from, e.g. "db.internal:5432". */
  get upstream(): string {
    return this.#upstream;
  }

  get weight(): number {
    return this.#weight;
  }

  /** Infinity when unset. */
  get maxConnections(): number {
    return this.#maxConnections;
  }

  reconfigure(settings: EndpointSettings): void {
    checkSettings(settings);
    this.#upstream = settings.upstream;
    this.#weight = settings.weight;
    this.#maxConnections = settings.maxConnections ?? Infinity;
  }
}

/** Throws a RangeError naming the upstream when a weight or limit cannot be balanced on. */
export function checkSettings(settings: EndpointSettings): void {
  const { upstream, weight, maxConnections = Infinity } = settings;
  if (!(weight > 0 && Number.isFinite(weight))) {
    throw new RangeError(`${upstream}: weight must be a positive number, got ${weight}`);
  }
  if (!(maxConnections > 0)) {
    throw new RangeError(`${upstream}: max_connections must be positive, got ${maxConnections}`);
  }
}

/** The state the pool shows for an endpoint: admin drain wins over the health verdict. */
export function derivedState(endpoint: Endpoint): EndpointState {
  if (endpoint.drained) return 'draining';
  return endpoint.reachable ? 'healthy' : 'down';
}

/** Whether a balancer may hand this endpoint out now. Called per pick: keep it trivial. */
export function canTake(endpoint: Endpoint, exclude: ReadonlySet<Endpoint> | undefined): boolean {
  return endpoint.state === 'healthy' && endpoint.active < endpoint.maxConnections && !exclude?.has(endpoint);
}

/** Whether `a` carries less load than `b` relative to weight (exact: no division). */
export function lighter(a: Endpoint, b: Endpoint): boolean {
  return a.active * b.weight < b.active * a.weight;
}
