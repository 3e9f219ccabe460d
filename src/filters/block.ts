/**
 * `block`: when the stream matches, the connection is closed (reason `filter`); the bytes
 * before the match pass, the match and everything after it do not. Matches across chunk
 * boundaries are found: the bytes that could begin a match are held back for up to `hold`
 * ms (then released, but still remembered, so a match completed later still closes the
 * connection; only its already released start has then passed).
 */
import type { Filter, FilterContext, Push } from './filter.js';
import { HoldTimer } from './hold-timer.js';
import { partialTextMatchLength, type Pattern } from './pattern.js';

export interface BlockOptions {
  readonly pattern: Pattern;
  /** As written in the config, for the log line. */
  readonly match: string;
  readonly maxMatch: number;
  readonly holdMs: number;
}

const EMPTY = Buffer.alloc(0);

class BlockFilter implements Filter {
  /** How many trailing bytes of the stream a future match may start in. */
  private readonly window: number;
  private readonly hold: HoldTimer;
  /** Released bytes still inside the window (latin1), for matches that complete later. */
  private lookbehind = '';
  /** Bytes not yet released, as bytes (to push) and as latin1 (to search). */
  private held = EMPTY;
  private heldText = '';
  private blocked = false;
  private push: Push | undefined;

  constructor(
    private readonly context: FilterContext,
    private readonly options: BlockOptions,
  ) {
    const { pattern } = options;
    this.window = pattern.kind === 'literal' ? pattern.text.length - 1 : options.maxMatch;
    this.hold = new HoldTimer(options.holdMs, this.release);
  }

  data(chunk: Buffer, push: Push): void {
    if (this.blocked) return;
    this.push = push;
    const pending = this.held.length === 0 ? chunk : Buffer.concat([this.held, chunk]);
    const text = this.lookbehind + this.heldText + chunk.toString('latin1');
    const base = this.lookbehind.length;
    const at = this.find(text);
    if (at !== -1) {
      if (at > base) push(pending.subarray(0, at - base));
      this.block();
      return;
    }
    const { pattern } = this.options;
    const keep = pattern.kind === 'literal' ? partialTextMatchLength(text, base, pattern.text) : Math.min(this.window, pending.length);
    if (pending.length > keep) push(keep === 0 ? pending : pending.subarray(0, pending.length - keep));
    this.held = keep === 0 ? EMPTY : Buffer.from(pending.subarray(pending.length - keep));
    this.heldText = text.slice(text.length - keep);
    this.lookbehind = text.slice(Math.max(0, text.length - this.window), text.length - keep);
    if (keep > 0) this.hold.arm();
    else this.hold.cancel();
  }

  end(push: Push): void {
    this.hold.cancel();
    if (!this.blocked && this.held.length > 0) push(this.held);
    this.held = EMPTY;
  }

  destroy(): void {
    this.hold.cancel();
  }

  private find(text: string): number {
    const { pattern } = this.options;
    if (pattern.kind === 'literal') return text.indexOf(pattern.text);
    pattern.regex.lastIndex = 0;
    return pattern.regex.exec(text)?.index ?? -1;
  }

  private block(): void {
    this.blocked = true;
    this.hold.cancel();
    this.held = EMPTY;
    this.heldText = this.lookbehind = '';
    this.context.log.warn({ event: 'filter_block', match: this.options.match }, 'blocked: the stream matched, closing the connection');
    this.context.close('filter');
  }

  private readonly release = (): void => {
    if (this.blocked || this.held.length === 0 || !this.push) return;
    this.push(this.held);
    const seen = this.lookbehind + this.heldText;
    this.lookbehind = seen.slice(Math.max(0, seen.length - this.window));
    this.held = EMPTY;
    this.heldText = '';
  };
}

export function createBlockFilter(context: FilterContext, options: BlockOptions): Filter {
  return new BlockFilter(context, options);
}
