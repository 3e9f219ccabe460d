/**
 * Connection ids, as the access log and the admin API show them (`GET /api/connections`,
 * closing by id): unique within the process, and across worker processes by a prefix the
 * runtime is given (the worker's number, `3-17`), so that the primary can route a close.
 */
export class ConnectionIds {
  #last = 0;

  constructor(private readonly prefix = '') {}

  next(): string {
    return this.prefix + String(++this.#last);
  }
}
