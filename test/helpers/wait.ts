/**
 * Waiting in tests. Prefer an event (a log line, 'close', a promise the code under test
 * resolves); poll only state that changes without one, and bound every wait.
 */
import { inspect } from 'node:util';
import assert from 'node:assert/strict';

/** Resolves after `ms`; only for asserting that something does NOT happen within a time. */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits for `promise`, failing after `ms` with `what` in the message (its timer cleared either
 * way). Also keeps the event loop alive: the code under test may unref its own timers and sockets.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Polls `probe` every `everyMs` until it returns something other than undefined (figures
 * gathered over HTTP or IPC); a probe that throws is retried, and its last error reported.
 */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${last ? `: ${inspect(last)}` : ''}`);
    await pause(everyMs);
  }
}

/** Polls `condition` every 10 ms until it holds: state that settles without a log line (counters after a close). */
export async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  await eventually(() => (condition() ? true : undefined), what, timeoutMs, 10);
}

/** Promise.withResolvers for Node 20. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
