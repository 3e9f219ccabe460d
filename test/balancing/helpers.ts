import { Endpoint } from '../../src/balancing/endpoint.js';
import type { LogLine } from '../helpers/log-collector.js';

/** Endpoints 127.0.0.1:9000, 127.0.0.2:9000 ... with the given weights. */
export function makeEndpoints(weights: readonly number[], maxConnections?: number): Endpoint[] {
  return weights.map((weight, i) => new Endpoint(`127.0.0.${i + 1}`, 9000, { upstream: `u${i}:9000`, weight, maxConnections }));
}

/** How many times each endpoint occurs in `picked`, in the order of `endpoints`. */
export function tally(endpoints: readonly Endpoint[], picked: readonly (Endpoint | undefined)[]): number[] {
  return endpoints.map((endpoint) => picked.filter((p) => p === endpoint).length);
}

/** Matches the upstream_state line for `label` going to `to`. */
export function stateChange(label: string, to: string): (line: LogLine) => boolean {
  return (line) => line.event === 'upstream_state' && line['upstream'] === label && line['to'] === to;
}
