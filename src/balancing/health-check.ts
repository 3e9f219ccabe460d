import { connect } from 'node:net';
import type { Endpoint } from './endpoint.js';
import { localShortage } from './local-shortage.js';

export interface HealthCheckOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive passing checks that bring a down endpoint back. */
  healthyThreshold: number;
  /** Consecutive failing checks that take a healthy endpoint out. */
  unhealthyThreshold: number;
  /** Written after connecting. */
  send?: Buffer;
  /** Must appear in what comes back (bytes: anywhere in it; RegExp: over it read as latin1). */
  expect?: Buffer | RegExp;
  /** Written first on every check, e.g. a PROXY v2 LOCAL header. */
  preamble?: () => Buffer;
}

/** `expect: "/^\\+OK/i"` is a regular expression; anything else is the literal bytes. Throws on a bad regex. */
export function parseExpectation(text: string): Buffer | RegExp {
  const match = /^\/(.*)\/([a-z]*)$/s.exec(text);
  return match ? new RegExp(match[1]!, match[2]) : Buffer.from(text);
}

/** Why `expect` cannot be used, for the config check (an invalid regex); undefined when it can. */
export function expectationProblem(text: string): string | undefined {
  try {
    parseExpectation(text);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Reply bytes kept while waiting for `expect`; a check that sees more without a match fails. */
const MAX_REPLY_BYTES = 64 * 1024;

/** Called with the new verdict when a threshold is crossed; `detail` says why. */
export type VerdictListener = (endpoint: Endpoint, reachable: boolean, detail: string) => void;

/** Called when a check could not run for want of a local resource (`code`: EMFILE...). */
export type ShortageListener = (endpoint: Endpoint, code: string) => void;

/**
 * Active health checking of one endpoint: a TCP connect (optionally a request and an
 * expected reply) every interval, bounded by the timeout. The first check comes at a
 * random point of the first interval, so that a pool's checks are spread over time rather
 * than fired together; the next is scheduled only when one ends, so checks never overlap.
 * Consecutive results are counted against the thresholds; the verdict itself lives in
 * `endpoint.reachable`, which the pool owns.
 */
export class HealthCheck {
  private passes = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private cancelProbe: (() => void) | undefined;
  private startedAt = 0;
  private stopped = false;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly options: HealthCheckOptions,
    private readonly onVerdict: VerdictListener,
    private readonly random: () => number = Math.random,
    private readonly onShortage: ShortageListener = () => undefined,
  ) {}

  start(): void {
    this.schedule(Math.floor(this.random() * this.options.intervalMs));
  }

  /** Stops the schedule and aborts a check in flight (its result is dropped). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.cancelProbe?.();
    this.cancelProbe = undefined;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(this.check, delayMs);
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    this.startedAt = Date.now();
    this.cancelProbe = probe(this.endpoint, this.options, this.checked);
  };

  private readonly checked = (failure: string | undefined): void => {
    this.cancelProbe = undefined;
    if (this.stopped) return;
    // This host short of descriptors, ports or memory says nothing about the endpoint:
    // the check does not count either way (see local-shortage.ts).
    if (localShortage(failure) !== undefined) this.onShortage(this.endpoint, failure!);
    else this.record(failure);
    // The next check starts one interval after this one started (or at once if it took longer).
    this.schedule(Math.max(0, this.options.intervalMs - (Date.now() - this.startedAt)));
  };

  private record(failure: string | undefined): void {
    const { endpoint, options } = this;
    if (failure === undefined) {
      this.passes++;
      this.failures = 0;
      if (!endpoint.reachable && this.passes >= options.healthyThreshold) {
        this.onVerdict(endpoint, true, `passed ${this.passes} in a row`);
      }
    } else {
      this.failures++;
      this.passes = 0;
      if (endpoint.reachable && this.failures >= options.unhealthyThreshold) {
        this.onVerdict(endpoint, false, failure);
      }
    }
  }
}

/**
 * One check. Calls `done` exactly once with undefined (passed) or why it failed, unless
 * cancelled first. Returns the cancel function.
 */
function probe(endpoint: Endpoint, options: HealthCheckOptions, done: (failure: string | undefined) => void): () => void {
  const { expect } = options;
  let finished = false;
  let reply = Buffer.alloc(0);
  const socket = connect({ host: endpoint.host, port: endpoint.port });
  // A check in flight must not hold the process open at shutdown.
  socket.unref();
  const timer = setTimeout(() => finish('timeout'), options.timeoutMs);
  timer.unref();

  function cancel(): void {
    finished = true;
    clearTimeout(timer);
    socket.destroy();
  }
  function finish(failure: string | undefined): void {
    if (finished) return;
    cancel();
    done(failure);
  }

  socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code ?? error.message));
  socket.on('connect', () => {
    const request = [options.preamble?.(), options.send].filter((part): part is Buffer => part !== undefined);
    if (expect !== undefined) {
      for (const part of request) socket.write(part);
    } else if (request.length > 0) {
      socket.end(Buffer.concat(request), () => finish(undefined));
    } else {
      finish(undefined);
    }
  });
  if (expect !== undefined) {
    socket.on('data', (chunk: Buffer) => {
      reply = Buffer.concat([reply, chunk]);
      if (replyMatches(reply, expect)) finish(undefined);
      else if (reply.length >= MAX_REPLY_BYTES) finish('unexpected reply');
    });
    socket.on('end', () => finish(reply.length === 0 ? 'closed without reply' : 'unexpected reply'));
  }
  return cancel;
}

function replyMatches(reply: Buffer, expect: Buffer | RegExp): boolean {
  if (Buffer.isBuffer(expect)) return reply.includes(expect);
  expect.lastIndex = 0; // a /g or /y pattern would otherwise resume where the last check left off
  return expect.test(reply.toString('latin1'));
}
