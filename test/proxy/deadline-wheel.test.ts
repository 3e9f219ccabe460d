/**
 * The deadline wheel: never fires before a deadline, cancels, moves, and is not armed when
 * nothing is registered (it must not keep ticking, nor keep the process alive).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeadlineWheel, type Deadline } from '../../src/proxy/deadline-wheel.js';

function deadline(onReached: (at: number) => void): Deadline {
  return { wheelTick: undefined, deadlineReached: () => onReached(Date.now()) };
}

describe('deadline wheel', { timeout: 30_000 }, () => {
  // The wheel's timer is unref'd (it must not keep a proxy alive): this keeps the test's loop alive.
  let keepAlive: NodeJS.Timeout;
  before(() => (keepAlive = setInterval(() => undefined, 1000)));
  after(() => clearInterval(keepAlive));

  it('fires each deadline once, not before its time, then disarms', async () => {
    const wheel = new DeadlineWheel(10);
    const start = Date.now();
    const fired: number[] = [];
    const done = new Promise<void>((resolve) => {
      for (const ms of [5, 30, 60]) {
        wheel.schedule(
          deadline((at) => {
            assert.ok(at >= start + ms, `fired ${start + ms - at} ms early`);
            fired.push(ms);
            if (fired.length === 3) resolve();
          }),
          start + ms,
        );
      }
    });
    assert.equal(wheel.size, 3);
    await done;
    assert.deepEqual(fired, [5, 30, 60]);
    assert.equal(wheel.size, 0);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(wheel.armed, false, 'nothing registered: no timer');
  });

  it('cancels and moves deadlines; a cancelled one never fires', async () => {
    const wheel = new DeadlineWheel(10);
    const cancelled = deadline(() => assert.fail('a cancelled deadline fired'));
    wheel.schedule(cancelled, Date.now() + 20);
    wheel.cancel(cancelled);
    assert.equal(wheel.size, 0);
    let moves = 0;
    const reached = new Promise<void>((resolve) => {
      const moving: Deadline = {
        wheelTick: undefined,
        // Rescheduling from its own callback (as a raw socket's refreshed timeout does).
        deadlineReached: () => (++moves < 3 ? wheel.schedule(moving, Date.now() + 15) : resolve()),
      };
      wheel.schedule(moving, Date.now() + 10_000);
      wheel.schedule(moving, Date.now() + 15);
    });
    await reached;
    assert.equal(moves, 3);
    assert.equal(wheel.size, 0);
  });
});
