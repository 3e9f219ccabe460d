/**
 * One direction of a filtered connection: source 'data' -> FilterChain -> destination.write.
 *
 * Backpressure holds end to end: the source is paused while the chain is busy (a stage
 * returned a promise) or while the destination's buffer is full (write() returned false),
 * and resumed only when both have cleared. End of stream is carried through after the
 * chain has flushed (`chain.end()`), so half-close is preserved: the other direction keeps
 * running. The bridge owns the sockets (their 'error' and 'close' handlers, destroying
 * them); this class only moves bytes and reports a filter failure through `onFailure`.
 */
import type { Socket } from 'node:net';
import type { FilterChain, FilterError } from './chain.js';

export class FilteredDirection {
  private chainBusy = false;
  private destinationFull = false;
  private sourceEnded = false;
  private stopped = false;

  constructor(
    private readonly source: Socket,
    private readonly destination: Socket,
    private readonly chain: FilterChain,
    private readonly onFailure: (error: unknown) => void,
    /** Called when the source is paused (its reads stop: the bridge has it probed for a dead peer). */
    private readonly onPaused: () => void = noop,
  ) {}

  /** Attaches the listeners and lets the source flow. */
  start(): void {
    this.source.on('data', this.onData);
    this.source.on('end', this.onEnd);
    this.destination.on('drain', this.onDrain);
    this.source.resume();
    // After resume(): a failure the chain already holds (a factory threw) pauses it again
    // before any data can flow (resume() only takes effect on the next tick).
    this.chain.connect({ data: this.deliver, failed: this.onChainFailed });
  }

  /** Detaches everything and destroys the chain (its filters' timers); idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.source.off('data', this.onData);
    this.source.off('end', this.onEnd);
    this.destination.off('drain', this.onDrain);
    this.chain.destroy();
  }

  private readonly onData = (chunk: Buffer): void => {
    const pending = this.chain.write(chunk);
    if (pending === undefined) return;
    this.chainBusy = true;
    this.pauseSource();
    // Never rejects: the chain reports a failing filter through ChainOutput.failed instead.
    void pending.then(this.onChainIdle);
  };

  private readonly onChainIdle = (): void => {
    this.chainBusy = false;
    this.resumeIfClear();
  };

  /** The chain's output: may be called later than onData (a delay or throttle timer). */
  private readonly deliver = (chunk: Buffer): void => {
    const { destination } = this;
    if (this.stopped || destination.destroyed || destination.writableEnded) return;
    if (!destination.write(chunk) && !this.destinationFull) {
      this.destinationFull = true;
      this.pauseSource();
    }
  };

  private readonly onDrain = (): void => {
    this.destinationFull = false;
    this.resumeIfClear();
  };

  private resumeIfClear(): void {
    if (!this.stopped && !this.chain.stopped && !this.chainBusy && !this.destinationFull && !this.sourceEnded) {
      this.source.resume();
    }
  }

  private readonly onEnd = (): void => {
    this.sourceEnded = true;
    const flushed = this.chain.end();
    if (flushed === undefined) this.endDestination();
    else void flushed.then(this.endDestination); // never rejects, as in onData
  };

  private readonly endDestination = (): void => {
    if (!this.stopped && !this.chain.stopped && !this.destination.destroyed) this.destination.end();
  };

  private readonly onChainFailed = (error: FilterError): void => {
    if (this.stopped) return;
    this.source.pause();
    this.onFailure(error);
  };

  private pauseSource(): void {
    this.source.pause();
    this.onPaused();
  }
}

function noop(): void {
  // nothing to do
}
