/**
 * The cancellation the bridge hands connectUpstream(): the part of AbortController and
 * AbortSignal that the connector uses, without EventTarget. On Node 20 an AbortSignal's
 * addEventListener + removeEventListener cost ~9 µs (micro-measured), about a tenth of the
 * JavaScript a proxied connection runs; this costs next to nothing. connectUpstream() takes
 * either (AbortSignalLike): tests and other callers pass a real AbortSignal.
 */
import { TcpProxyError } from '../errors/errors.js';

/** What the connector needs of an AbortSignal (an AbortSignal has it). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** A controller and its signal in one object, with room for the one listener (the connector's). */
export class ConnectAbort implements AbortSignalLike {
  aborted = false;
  reason: unknown = undefined;
  private listener: (() => void) | undefined;

  get signal(): AbortSignalLike {
    return this;
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener !== undefined && this.listener !== listener) throw new TcpProxyError('internal', 'ConnectAbort: a second abort listener');
    this.listener = listener;
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined;
  }

  /** As AbortController.abort(): once; the listener is called at once, then forgotten. */
  abort(reason: unknown = new DOMException('This operation was aborted', 'AbortError')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.listener;
    this.listener = undefined;
    listener?.();
  }
}
