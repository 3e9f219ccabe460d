/**
 * The filter plugin API: the published types a built-in filter or a user plugin implements.
 *
 * A connection has two directions, each with its own chain of filters (its own Filter
 * instances). A filter sees the chunks of one direction in order and may pass them on
 * (changed or not), hold them, drop them, split them, delay them, or close the connection.
 */
import type { Logger } from 'pino';

/** `to_upstream`: client -> server; `to_client`: server -> client. */
export type Direction = 'to_upstream' | 'to_client';

/** Hands bytes to the next filter of the chain (or to the destination socket). */
export type Push = (chunk: Buffer) => void;

/** What a filter knows about its connection; one per filter instance. */
export interface FilterContext {
  readonly connectionId: string;
  readonly listener: string;
  readonly direction: Direction;
  /** The client's address (the remote end of the client socket, or the PROXY-header source). */
  readonly client: { readonly address: string; readonly port: number };
  readonly upstream: { readonly address: string; readonly port: number };
  /** A pino child logger bound to the connection id, the filter name and the direction. */
  readonly log: Logger;
  /**
   * Ends the whole connection (both directions). `reason` goes to the access log (default
   * `filter`); `reset: true` sends a TCP reset to both peers instead of a normal close.
   */
  close(reason?: string, options?: { reset?: boolean }): void;
}

/**
 * One direction's filter instance. The chain never calls `data` again while a promise it
 * returned is pending, so a filter applies backpressure by returning a promise ("busy").
 * `push` may be called synchronously or later (from a timer), until `destroy`.
 * A throw or a rejected promise closes this connection (reason `filter`), nothing else.
 */
export interface Filter {
  /** Called per chunk: push 0..n chunks on. Do not modify `chunk` in place after pushing it. */
  data(chunk: Buffer, push: Push): void | Promise<void>;
  /** End of stream in this direction: push any held bytes; a promise delays the FIN until it settles. */
  end?(push: Push): void | Promise<void>;
  /**
   * Live filters only: the filter is being removed from a connection that goes on. Push
   * everything held, now (synchronously); `destroy` follows. Without it, held bytes are lost.
   */
  flush?(push: Push): void;
  /** The connection is gone: release timers and held data. Called once; no push afterwards. */
  destroy?(): void;
}

/**
 * A plugin module's default export (or its named export `createFilter`). Called once per
 * connection and direction with the entry's `options` exactly as written in the config.
 */
export type FilterFactory = (context: FilterContext, options: unknown) => Filter;
