/**
 * `drop_connection_probability`: decides once per connection, with the given probability,
 * to drop it: reset right after it was set up, before any byte passes. The pipeline creates
 * this filter for one direction only, so that each connection draws exactly once.
 */
import type { Filter, FilterContext } from './filter.js';

export interface DropConnectionOptions {
  readonly probability: number;
}

class DroppedConnection implements Filter {
  private destroyed = false;

  constructor(context: FilterContext) {
    // A microtask: the bridge is still setting the connection up when the filter is made,
    // and the reset must still come before any read (reads happen in a later I/O phase).
    queueMicrotask(() => {
      if (!this.destroyed) context.close('filter', { reset: true });
    });
  }

  data(): void {
    // Nothing passes: the connection is being reset.
  }

  destroy(): void {
    this.destroyed = true;
  }
}

/** Passes everything: the connection was not drawn. */
const KEEP: Filter = { data: (chunk, push) => push(chunk) };

export function createDropConnectionFilter(context: FilterContext, options: DropConnectionOptions): Filter {
  return Math.random() < options.probability ? new DroppedConnection(context) : KEEP;
}
