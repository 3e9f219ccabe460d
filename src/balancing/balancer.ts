import type { Endpoint } from './endpoint.js';

export type BalanceStrategy = 'round_robin' | 'least_connections' | 'random' | 'source_hash';

/**
 * A balancing policy. It only decides; the pool tells it what changed so that it can keep
 * whatever index makes pick() O(1) or O(log n) instead of scanning every endpoint.
 */
export interface Balancer {
  /** The pool's endpoints changed (start, DNS re-resolution). Order is the config order. */
  setEndpoints(endpoints: readonly Endpoint[]): void;
  /** An endpoint's state (healthy / down / draining) changed. */
  stateChanged(endpoint: Endpoint): void;
  /** An endpoint's active connection count changed. */
  loadChanged(endpoint: Endpoint): void;
  /** An endpoint for which canTake() holds, or undefined when there is none. */
  pick(clientIp: string, exclude: ReadonlySet<Endpoint> | undefined): Endpoint | undefined;
}
