/**
 * Merging the /api/stats documents of several workers into one (used by the primary with
 * --workers). Counts add up; an upstream's state is "draining" when any worker drains it
 * (drain is an operator action sent to all), else "healthy" when any worker can reach it,
 * else "down".
 */
import type { ListenerStats, UpstreamStats, UpstreamState } from '../observability/metrics.js';
import type { ClusterStatus } from '../cluster/redis-link.js';
import type { StatsSnapshot } from './admin-runtime.js';

export function mergeStats(parts: readonly StatsSnapshot[]): StatsSnapshot {
  const listeners = new Map<string, ListenerStats>();
  const upstreams = new Map<string, UpstreamStats>();
  for (const part of parts) {
    for (const listener of part.listeners) {
      const merged = listeners.get(listener.name);
      if (merged === undefined) listeners.set(listener.name, cloneListener(listener));
      else addListener(merged, listener);
    }
    for (const upstream of part.upstreams) {
      const key = `${upstream.listener}\n${upstream.address}`;
      const merged = upstreams.get(key);
      if (merged === undefined) upstreams.set(key, { ...upstream });
      else {
        merged.active += upstream.active;
        merged.connections_total += upstream.connections_total;
        merged.connect_failures += upstream.connect_failures;
        merged.state = mergeState(merged.state, upstream.state);
      }
    }
  }
  const cluster = mergeCluster(parts.flatMap((part) => (part.cluster ? [part.cluster] : [])));
  return {
    time: Math.max(0, ...parts.map((part) => part.time)),
    listeners: [...listeners.values()],
    upstreams: [...upstreams.values()],
    ...(cluster && { cluster }),
  };
}

/**
 * Each worker has its own Redis link: the state is "down" when any worker's is (its
 * admissions follow on_error); connections held add up; the cluster-wide count is the
 * freshest of the workers' views, taken as the largest.
 */
function mergeCluster(parts: readonly ClusterStatus[]): ClusterStatus | undefined {
  const [first] = parts;
  if (first === undefined) return undefined;
  const listeners = new Map<string, { name: string; local: number; cluster: number }>();
  for (const part of parts) {
    for (const l of part.listeners) {
      const merged = listeners.get(l.name);
      if (merged === undefined) listeners.set(l.name, { ...l });
      else {
        merged.local += l.local;
        merged.cluster = Math.max(merged.cluster, l.cluster);
      }
    }
  }
  return { ...first, state: parts.every((p) => p.state === 'up') ? 'up' : 'down', listeners: [...listeners.values()] };
}

function cloneListener(listener: ListenerStats): ListenerStats {
  return { ...listener, rejections: { ...listener.rejections }, closes: { ...listener.closes } };
}

function addListener(into: ListenerStats, from: ListenerStats): void {
  into.active += from.active;
  into.connections_total += from.connections_total;
  into.queue_length += from.queue_length;
  into.bytes_from_client += from.bytes_from_client;
  into.bytes_to_client += from.bytes_to_client;
  addCounts(into.rejections, from.rejections);
  addCounts(into.closes, from.closes);
}

function addCounts<K extends string>(into: Record<K, number>, from: Record<K, number>): void {
  for (const key of Object.keys(from) as K[]) into[key] = (into[key] ?? 0) + from[key];
}

function mergeState(a: UpstreamState, b: UpstreamState): UpstreamState {
  if (a === 'draining' || b === 'draining') return 'draining';
  return a === 'healthy' || b === 'healthy' ? 'healthy' : 'down';
}
