/**
 * `slice`: cuts every chunk into writes of at most `size` bytes, optionally `delay` ms
 * apart, to exercise a peer's reassembly of messages split across TCP segments. While the
 * pieces of a chunk are being spaced out, data() returns a promise (backpressure).
 * With `variation`, each piece is `size` ± up to `variation` bytes (toxiproxy's slicer).
 */
import type { Filter, Push } from './filter.js';

export interface SliceOptions {
  readonly size: number;
  readonly delayMs: number;
  /** Each piece's size varies by up to this many bytes either way (at least 1 byte). */
  readonly variation?: number;
}

class SliceFilter implements Filter {
  private rest: Buffer | undefined;
  private push: Push | undefined;
  private done: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SliceOptions) {}

  data(chunk: Buffer, push: Push): void | Promise<void> {
    const { delayMs } = this.options;
    if (delayMs === 0) {
      for (let offset = 0; offset < chunk.length;) {
        const end = offset + this.pieceSize();
        push(chunk.subarray(offset, end));
        offset = end;
      }
      return undefined;
    }
    const size = this.pieceSize();
    push(chunk.subarray(0, size));
    if (chunk.length <= size) return undefined;
    this.rest = chunk.subarray(size);
    this.push = push;
    return new Promise<void>((resolve) => {
      this.done = resolve;
      this.timer = setTimeout(this.next, delayMs).unref();
    });
  }

  /** Removed at run time: the rest of the chunk leaves now, in one piece. */
  flush(push: Push): void {
    const { rest, done } = this;
    if (rest !== undefined && rest.length > 0) push(rest);
    this.destroy();
    done?.();
  }

  destroy(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = this.rest = this.push = this.done = undefined;
  }

  private pieceSize(): number {
    const { size, variation = 0 } = this.options;
    if (variation === 0) return size;
    return Math.max(1, size + Math.floor(Math.random() * (2 * variation + 1)) - variation);
  }

  private readonly next = (): void => {
    const size = this.pieceSize();
    const rest = this.rest!;
    this.rest = rest.subarray(size);
    this.push!(rest.subarray(0, size));
    if (this.done === undefined) return; // destroyed by the push (the connection closed)
    if (this.rest.length > 0) {
      this.timer!.refresh();
      return;
    }
    const done = this.done;
    this.timer = this.rest = this.push = this.done = undefined;
    done();
  };
}

export function createSliceFilter(options: SliceOptions): Filter {
  return new SliceFilter(options);
}
