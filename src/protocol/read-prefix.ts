/**
 * Reads the first bytes of a connection (a PROXY header, a TLS ClientHello) from a paused
 * socket, chunk by chunk, until the consumer has what it needs.
 *
 * The socket flows only while the reader listens and is paused again from inside the
 * handler of the chunk that completes the prefix, so every later byte stays buffered in
 * the socket. On every outcome the reader removes its listeners, clears its timer and
 * leaves the socket paused (readableFlowing === false: resume() or pipe() it); it never
 * destroys the socket (the caller decides, and logs why). The caller must keep an
 * 'error' handler of its own on the socket.
 */
import type { Socket } from 'node:net';

export interface PrefixReader<T> {
  /** What is being read, for messages: "PROXY protocol header". */
  subject: string;
  /** Called with each chunk in order: a result ends the read; throwing rejects it. */
  consume: (chunk: Buffer) => T | undefined;
  /** Builds the rejection for a timeout or an early close. */
  fail: (message: string) => Error;
}

export function readPrefix<T>(socket: Socket, timeoutMs: number, reader: PrefixReader<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const closedEarly = () => reader.fail(`connection closed before the ${reader.subject} was complete`);
    if (socket.destroyed || socket.readableEnded) {
      reject(closedEarly());
      return;
    }

    const onData = (chunk: Buffer): void => {
      let result: T | undefined;
      try {
        result = reader.consume(chunk);
      } catch (err) {
        settle(err as Error, undefined);
        return;
      }
      if (result !== undefined) settle(undefined, result);
    };
    const onClose = (): void => settle(closedEarly(), undefined);
    const onError = (err: Error): void => settle(err, undefined);
    const timer = setTimeout(() => {
      settle(reader.fail(`${reader.subject} not complete within ${timeoutMs} ms`), undefined);
    }, timeoutMs);
    // The socket keeps the process alive while it matters; the timer alone must not.
    timer.unref();

    function settle(err: Error | undefined, result: T | undefined): void {
      clearTimeout(timer);
      // Paused inside the 'data' handler, flowing stops before the next chunk is emitted:
      // whatever arrives later stays in the socket's buffer for the caller.
      socket.off('data', onData);
      socket.off('end', onClose);
      socket.off('close', onClose);
      socket.off('error', onError);
      socket.pause();
      if (err !== undefined) reject(err);
      else resolve(result as T);
    }

    socket.on('data', onData);
    socket.on('end', onClose);
    socket.on('close', onClose);
    socket.on('error', onError);
    socket.resume();
  });
}
