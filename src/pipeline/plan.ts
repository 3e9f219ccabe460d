/**
 * A FilterPlan is one `filters` entry made ready once per config load (pattern compiled,
 * plugin imported), from which the pipeline creates a Filter per connection and direction.
 */
import { createBlockFilter } from '../filters/block.js';
import { createDelayFilter } from '../filters/delay.js';
import { createDropConnectionFilter } from '../filters/drop-connection.js';
import type { Direction, Filter, FilterContext } from '../filters/filter.js';
import { parsePattern } from '../filters/pattern.js';
import { formatKeyPath } from '../config/load.js';
import { loadPlugin } from '../filters/plugin-loader.js';
import { createReplaceFilter } from '../filters/replace.js';
import { createResetAfterFilter } from '../filters/reset-after.js';
import type { FilterSpec } from '../config/filter-schema.js';
import { createSliceFilter } from '../filters/slice.js';
import { createThrottleFilter, defaultBurst } from '../filters/throttle.js';
import { TcpProxyError } from '../errors/errors.js';

export interface FilterPlan {
  /** The name in logs and errors: the filter type, or the plugin's path as configured. */
  readonly name: string;
  readonly directions: readonly Direction[];
  create(context: FilterContext): Filter;
}

const BOTH: readonly Direction[] = ['to_upstream', 'to_client'];

function directionsOf(direction: Direction | 'both'): readonly Direction[] {
  return direction === 'both' ? BOTH : [direction];
}

/** A plugin's own `validateOptions` found its options wrong: one `options.<path>: message` line each. */
export class PluginOptionsError extends TcpProxyError {
  constructor(readonly problems: readonly string[]) {
    super('plugin_options', problems.join('\n'));
  }
}

export async function planFilter(spec: FilterSpec, baseDir: string): Promise<FilterPlan> {
  switch (spec.type) {
    case 'replace': {
      const options = {
        pattern: parsePattern(spec.match, spec.literal),
        replacement: spec.with,
        maxMatch: spec.max_match,
        holdMs: spec.hold,
      };
      return { name: spec.type, directions: directionsOf(spec.direction), create: () => createReplaceFilter(options) };
    }
    case 'block': {
      const options = { pattern: parsePattern(spec.match, spec.literal), match: spec.match, maxMatch: spec.max_match, holdMs: spec.hold };
      return { name: spec.type, directions: directionsOf(spec.direction), create: (context) => createBlockFilter(context, options) };
    }
    case 'throttle': {
      const options = { bytesPerSecond: spec.bytes_per_second, burst: spec.burst ?? defaultBurst(spec.bytes_per_second) };
      return { name: spec.type, directions: directionsOf(spec.direction), create: () => createThrottleFilter(options) };
    }
    case 'delay': {
      const options = { latencyMs: spec.latency, jitterMs: spec.jitter, maxHeld: spec.max_held };
      return { name: spec.type, directions: directionsOf(spec.direction), create: () => createDelayFilter(options) };
    }
    case 'reset_after': {
      const options = { bytes: spec.bytes, afterMs: spec.after };
      return { name: spec.type, directions: directionsOf(spec.direction), create: (context) => createResetAfterFilter(context, options) };
    }
    case 'slice': {
      const options = { size: spec.size, delayMs: spec.delay };
      return { name: spec.type, directions: directionsOf(spec.direction), create: () => createSliceFilter(options) };
    }
    case 'drop_connection_probability': {
      const options = { probability: spec.probability };
      // One direction only: one draw per connection.
      return { name: spec.type, directions: ['to_upstream'], create: (context) => createDropConnectionFilter(context, options) };
    }
    case 'module': {
      const plugin = await loadPlugin(spec.module, baseDir);
      const options = spec.options ?? {};
      const problems = plugin.validateOptions?.(options) ?? [];
      if (problems.length > 0) throw new PluginOptionsError(problems.map((p) => `${formatKeyPath(['options', ...(p.path ?? [])])}: ${p.message}`));
      return { name: spec.module, directions: directionsOf(spec.direction), create: (context) => plugin.createFilter(context, options) };
    }
  }
}
