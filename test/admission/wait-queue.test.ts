import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WaitQueue } from '../../src/admission/wait-queue.js';

const never = (): void => assert.fail('no timeout expected');

/** Queue timers are unref'ed: hold the event loop open while a test awaits them. */
async function whileAlive<T>(promise: Promise<T>): Promise<T> {
  const hold = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(hold);
  }
}

const refTimers = (): number => process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;

describe('WaitQueue', { timeout: 10_000 }, () => {
  it('is first in, first out', () => {
    const queue = new WaitQueue<string>({ maxSize: 10 });
    for (const item of ['a', 'b', 'c']) queue.enqueue(item, 60_000, never);
    assert.equal(queue.length, 3);
    assert.equal(queue.peek(), 'a');
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift(), queue.shift()], ['a', 'b', 'c', undefined]);
    assert.equal(queue.length, 0);
  });

  it('refuses entries beyond maxSize', () => {
    const queue = new WaitQueue<number>({ maxSize: 2 });
    assert.ok(queue.enqueue(1, 60_000, never));
    assert.equal(queue.full, false);
    assert.ok(queue.enqueue(2, 60_000, never));
    assert.equal(queue.full, true);
    assert.equal(queue.enqueue(3, 60_000, never), undefined);
    assert.equal(queue.length, 2);
    queue.shift();
    assert.ok(queue.enqueue(3, 60_000, never));
    assert.equal(new WaitQueue<number>({ maxSize: 0 }).enqueue(1, 1000, never), undefined);
    while (queue.shift() !== undefined);
  });

  it('times entries out in order, removing them first', async () => {
    const queue = new WaitQueue<string>({ maxSize: 10 });
    const expired: string[] = [];
    const allExpired = new Promise<void>((resolve) => {
      const onTimeout = (item: string): void => {
        assert.equal(queue.peek() === item, false, 'removed before onTimeout runs');
        expired.push(item);
        if (expired.length === 3) resolve();
      };
      queue.enqueue('a', 10, onTimeout);
      queue.enqueue('b', 10, onTimeout);
      queue.enqueue('c', 10, onTimeout);
    });
    await whileAlive(allExpired);
    assert.deepEqual(expired, ['a', 'b', 'c']);
    assert.equal(queue.length, 0);
  });

  it('cancel and shift stop the timeout', async () => {
    const queue = new WaitQueue<string>({ maxSize: 10 });
    const expired: string[] = [];
    const record = (item: string): void => void expired.push(item);
    const cancelled = queue.enqueue('cancelled', 5, record)!;
    queue.enqueue('shifted', 5, record);
    const middle = queue.enqueue('kept', 5, record)!;
    assert.equal(cancelled.cancel(), true);
    assert.equal(cancelled.cancel(), false, 'a second cancel is a no-op');
    assert.equal(queue.shift(), 'shifted');
    // A later deadline: by the time it fires, the earlier ones would have fired too.
    const last = new Promise<void>((resolve) =>
      queue.enqueue('last', 30, (item) => {
        record(item);
        resolve();
      }),
    );
    await whileAlive(last);
    assert.deepEqual(expired, ['kept', 'last']);
    assert.equal(middle.cancel(), false, 'expired entries cannot be cancelled');
  });

  it('does not keep the process alive with its timers', () => {
    const queue = new WaitQueue<number>({ maxSize: 1 });
    const before = refTimers();
    queue.enqueue(1, 60_000, never);
    assert.equal(refTimers(), before);
    queue.shift();
  });

  it('removeFirst takes the first matching entry and keeps the order of the rest', () => {
    const queue = new WaitQueue<number>({ maxSize: 10 });
    for (const item of [1, 2, 3, 4, 5]) queue.enqueue(item, 60_000, never);
    assert.equal(
      queue.removeFirst((item) => item % 2 === 0),
      2,
    );
    assert.equal(
      queue.removeFirst((item) => item > 10),
      undefined,
    );
    assert.equal(
      queue.removeFirst((item) => item === 5),
      5,
    );
    assert.equal(
      queue.removeFirst((item) => item === 1),
      1,
    );
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift()], [3, 4, undefined]);
  });

  it('rejects invalid sizes and timeouts', () => {
    assert.throws(() => new WaitQueue({ maxSize: -1 }), /maxSize/);
    const queue = new WaitQueue<number>({ maxSize: 1 });
    assert.throws(() => queue.enqueue(1, 2 ** 31, never), /timeoutMs/);
    assert.throws(() => queue.enqueue(1, Number.NaN, never), /timeoutMs/);
    assert.equal(queue.length, 0);
  });
});
