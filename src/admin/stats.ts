/**
 * Merging the /api/stats documents of several workers into one (used by the primary with
 * --workers). Counts add up; an upstream's state is "draining" when any worker drains it
 * (drain is an operator action sent to all), else "healthy" when any worker can reach it,
 * else "down".
 */
import type { ListenerStats, UpstreamStats, UpstreamState } from '../observability/metrics.js';
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
  return {
    time: Math.max(0, ...parts.map((part) => part.time)),
    listeners: [...listeners.values()],
    upstreams: [...upstreams.values()],
  };
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
