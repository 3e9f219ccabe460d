/**
 * A FilterChain runs one direction's filters in order. Each filter is a stage: its `push`
 * feeds the next stage, and the last stage's push is the chain's output (the destination
 * socket). A stage whose `data()` returned a promise is busy: chunks pushed to it meanwhile
 * wait in its queue, in order. `write()` returns a promise while any stage is busy, which
 * is how the FilteredDirection knows to stop reading (backpressure through the chain).
 *
 * Failures (a throw, a rejected promise) are reported once, through `ChainOutput.failed`,
 * whenever they happen (also from a filter's timer); the chain then drops everything.
 *
 * Live filters (pipeline/live.ts) insert and remove stages while bytes flow. That is why a stage
 * pushes through its own `push`, which forwards to whatever follows it *now*: a filter that
 * keeps `push` for a timer still reaches the right stage after the chain changed behind it.
 */
import type { Logger } from 'pino';
import type { Direction, Filter, Push } from './filter.js';
import { TcpProxyError } from '../errors/errors.js';

/** A filter instance and the name the logs use for it (the type, or the plugin's path). */
export interface ChainStage {
  readonly name: string;
  readonly filter: Filter;
}

/** Where the chain's bytes and its one failure go. */
export interface ChainOutput {
  data(chunk: Buffer): void;
  failed(error: FilterError): void;
}

/** A filter threw or rejected: the connection is closed with reason `filter`. */
export class FilterError extends TcpProxyError {
  constructor(
    readonly filter: string,
    readonly direction: Direction,
    cause: unknown,
  ) {
    super('filter_failed', `filter ${filter} (${direction}) failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface ChainIdentity {
  readonly connectionId: string;
  readonly direction: Direction;
  readonly log: Logger;
}

/** A stage of a chain, as pipeline/live.ts holds it to remove it later. */
export type StageHandle = Stage;

class Stage {
  busy = false;
  /** Taken out of the chain (live filters): a late settle of its filter changes nothing. */
  removed = false;
  private readonly queue: Buffer[] = [];

  constructor(
    private readonly chain: FilterChain,
    readonly name: string,
    readonly filter: Filter,
    /** What follows: the next stage's accept, or the chain's output; re-pointed by insert/remove. */
    public next: Push,
  ) {}

  /** Bound once per stage (not per chunk); handed to the filter. */
  readonly push: Push = (chunk) => this.next(chunk);

  readonly accept = (chunk: Buffer): void => {
    if (this.chain.stopped) return;
    if (this.busy) this.queue.push(chunk);
    else this.run(chunk);
  };

  private run(chunk: Buffer): void {
    let result: void | Promise<void>;
    try {
      result = this.filter.data(chunk, this.push);
    } catch (error) {
      this.chain.fail(this, error);
      return;
    }
    if (result !== undefined && typeof result.then === 'function') {
      this.busy = true;
      this.chain.busyStages++;
      result.then(this.settled, this.rejected);
    }
  }

  private readonly settled = (): void => {
    if (this.removed) return;
    this.busy = false;
    this.chain.busyStages--;
    while (!this.busy && this.queue.length > 0 && !this.chain.stopped) this.run(this.queue.shift()!);
    this.chain.checkIdle();
  };

  private readonly rejected = (error: unknown): void => {
    this.chain.fail(this, error);
  };

  clear(): void {
    this.queue.length = 0;
  }

  /**
   * Taken out while bytes flow: what the filter holds (`flush`), then what waited in front
   * of it, goes on in order before anything newer can; then the filter is released.
   */
  takeOut(): void {
    this.removed = true;
    try {
      this.filter.flush?.(this.next);
    } catch (error) {
      this.chain.fail(this, error);
    }
    for (const chunk of this.queue.splice(0)) this.next(chunk);
    if (this.busy) {
      this.busy = false;
      this.chain.busyStages--;
    }
    try {
      this.filter.destroy?.();
    } catch {
      // Released anyway: the filter is gone from the chain.
    }
  }
}

export class FilterChain {
  /** Set once the chain failed or was destroyed: nothing moves any more. */
  stopped = false;
  private destroyed = false;
  /** How many stages are busy; a stage's queue is non-empty only while it is busy. */
  busyStages = 0;
  private readonly stages: Stage[] = [];
  private output: ChainOutput | undefined;
  private failure: FilterError | undefined;
  private idle: Promise<void> | undefined;
  private resolveIdle: (() => void) | undefined;
  /** Where write() feeds chunks: the first stage's accept, or the output when there is none. */
  private entry: Push;

  constructor(
    stages: readonly ChainStage[],
    private readonly identity: ChainIdentity,
  ) {
    let next: Push = this.emit;
    for (let i = stages.length - 1; i >= 0; i--) {
      const stage = new Stage(this, stages[i]!.name, stages[i]!.filter, next);
      this.stages.unshift(stage);
      next = stage.accept;
    }
    this.entry = next;
  }

  get length(): number {
    return this.stages.length;
  }

  indexOf(stage: StageHandle): number {
    return this.stages.indexOf(stage);
  }

  /** Live filters: a stage at `index` (0 = first); chunks written from now on go through it. */
  insert(index: number, stage: ChainStage): StageHandle {
    const after = this.stages[index];
    const added = new Stage(this, stage.name, stage.filter, after ? after.accept : this.emit);
    const before = this.stages[index - 1];
    if (index > 0 && before) before.next = added.accept;
    else this.entry = added.accept;
    this.stages.splice(index, 0, added);
    return added;
  }

  /** Live filters: takes a stage out; what it holds is passed on first (see Stage.takeOut). */
  remove(stage: StageHandle): void {
    const index = this.stages.indexOf(stage);
    if (index === -1) return;
    const before = this.stages[index - 1];
    if (before) before.next = stage.next;
    else this.entry = stage.next;
    this.stages.splice(index, 1);
    stage.takeOut();
    this.checkIdle();
  }

  /** Attaches the destination; a failure that happened before is reported now. */
  connect(output: ChainOutput): void {
    this.output = output;
    if (this.failure) output.failed(this.failure);
  }

  /** Feeds a chunk in. Returns a promise while a stage is busy (stop reading until it settles). */
  write(chunk: Buffer): Promise<void> | undefined {
    if (this.stopped) return undefined;
    this.entry(chunk);
    return this.busyStages > 0 ? this.whenIdle() : undefined;
  }

  /**
   * End of stream: lets every stage finish its queued work, then calls each filter's `end`
   * in order, so that bytes a filter flushes still pass through the filters after it.
   * Returns a promise when any of that is asynchronous; the caller ends the destination after.
   */
  end(): Promise<void> | undefined {
    return this.endFrom(0);
  }

  /** Marks the chain failed before it runs (a factory threw while building it). */
  abort(name: string, cause: unknown): void {
    this.fail({ name }, cause);
  }

  /** Releases every filter (timers, held bytes); idempotent. Also after a failure. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.stopped = true;
    for (const stage of this.stages) {
      stage.clear();
      try {
        stage.filter.destroy?.();
      } catch (error) {
        this.identity.log.warn({ id: this.identity.connectionId, filter: stage.name, err: error }, 'filter destroy() threw');
      }
    }
    this.settleIdle();
  }

  /** @internal A stage failed: log it with the filter's name, report once, stop. */
  fail(stage: { readonly name: string }, cause: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    const { connectionId, direction, log } = this.identity;
    this.failure = new FilterError(stage.name, direction, cause);
    for (const s of this.stages) s.clear();
    log.warn({ event: 'filter_error', id: connectionId, direction, filter: stage.name, err: cause }, 'filter failed: closing the connection');
    this.settleIdle();
    this.output?.failed(this.failure);
  }

  /** @internal Called when a stage stops being busy. */
  checkIdle(): void {
    if (this.busyStages === 0) this.settleIdle();
  }

  private readonly emit = (chunk: Buffer): void => {
    if (!this.stopped) this.output?.data(chunk);
  };

  private whenIdle(): Promise<void> {
    this.idle ??= new Promise<void>((resolve) => {
      this.resolveIdle = resolve;
    });
    return this.idle;
  }

  private settleIdle(): void {
    const resolve = this.resolveIdle;
    this.idle = undefined;
    this.resolveIdle = undefined;
    resolve?.();
  }

  private endFrom(index: number): Promise<void> | undefined {
    for (let i = index; i <= this.stages.length; i++) {
      if (this.stopped) return undefined;
      if (this.busyStages > 0) return this.whenIdle().then(() => this.endFrom(i));
      const stage = this.stages[i];
      if (stage?.filter.end === undefined) continue;
      let result: void | Promise<void>;
      try {
        result = stage.filter.end(stage.push);
      } catch (error) {
        this.fail(stage, error);
        return undefined;
      }
      if (result !== undefined && typeof result.then === 'function') {
        return result.then(
          () => this.endFrom(i + 1),
          (error: unknown) => this.fail(stage, error),
        );
      }
    }
    return undefined;
  }
}
