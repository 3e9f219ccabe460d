/**
 * `inspect.log_data`: a pass-through tap at the start of each direction's chain that logs
 * every chunk as received from its sender: `{ event: 'data', id, direction, offset, length,
 * dump }`. The bytes dumped per connection (both directions together) are capped by
 * `log_data_limit`; past it, one `data_log_limit` notice, then nothing more is logged.
 */
import type { Logger } from 'pino';
import type { Direction, Filter, Push } from '../filters/filter.js';
import { hexDump, textDump } from './hex-dump.js';

export type DataLogFormat = 'hex' | 'text';

export class ConnectionDataLog {
  private budget: number;
  private readonly offsets = { to_upstream: 0, to_client: 0 };

  constructor(
    private readonly log: Logger,
    private readonly connectionId: string,
    private readonly format: DataLogFormat,
    private readonly limit: number,
  ) {
    this.budget = limit;
  }

  /** The tap for one direction. */
  tap(direction: Direction): Filter {
    return {
      data: (chunk: Buffer, push: Push): void => {
        this.record(direction, chunk);
        push(chunk);
      },
    };
  }

  private record(direction: Direction, chunk: Buffer): void {
    const offset = this.offsets[direction];
    this.offsets[direction] = offset + chunk.length;
    if (this.budget <= 0) return;
    const shown = chunk.length <= this.budget ? chunk : chunk.subarray(0, this.budget);
    this.budget -= shown.length;
    const dump = this.format === 'hex' ? hexDump(shown, offset) : textDump(shown);
    const truncated = shown.length < chunk.length;
    this.log.info({ event: 'data', id: this.connectionId, direction, offset, length: chunk.length, ...(truncated ? { truncated } : {}), dump }, 'data');
    if (this.budget <= 0) {
      this.log.info(
        { event: 'data_log_limit', id: this.connectionId, limit: this.limit },
        'log_data_limit reached: no more data is logged for this connection',
      );
    }
  }
}
