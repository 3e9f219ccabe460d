/** DeadPeerSweep: probes what is registered, drops what no longer needs it, and stops its timer. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeadPeerSweep, type Watched } from '../../src/proxy/dead-peer-sweep.js';
import { deferred } from '../helpers/wait.js';

/** An item that answers `answers` in turn, then false; `done` resolves at its last probe. */
function item(...answers: boolean[]): Watched & { probes: number; done: Promise<void> } {
  const finished = deferred();
  const watched = {
    probes: 0,
    done: finished.promise,
    probe(): boolean {
      const answer = answers[watched.probes++] ?? false;
      if (!answer) finished.resolve();
      return answer;
    },
  };
  return watched;
}

/** The sweep's timer is unref'd: something must keep the test's event loop running meanwhile. */
async function alive<T>(work: Promise<T>): Promise<T> {
  const keep = setInterval(() => undefined, 1000);
  try {
    return await work;
  } finally {
    clearInterval(keep);
  }
}

describe('DeadPeerSweep', { timeout: 10_000 }, () => {
  it('is idle with nothing registered: no timer', () => {
    const sweep = new DeadPeerSweep(5);
    assert.equal(sweep.armed, false);
    assert.equal(sweep.size, 0);
  });

  it('probes each item until it answers false, then drops it and disarms', async () => {
    const sweep = new DeadPeerSweep(5);
    const a = item(true, true);
    const b = item();
    sweep.watch(a);
    sweep.watch(b);
    sweep.watch(a); // registering twice is one registration
    assert.equal(sweep.size, 2);
    assert.equal(sweep.armed, true);
    await alive(Promise.all([a.done, b.done]));
    assert.equal(a.probes, 3);
    assert.equal(b.probes, 1);
    assert.equal(sweep.size, 0);
    assert.equal(sweep.armed, false, 'the timer must stop once nothing is watched');
  });

  it('unwatch() takes an item out before its next probe', async () => {
    const sweep = new DeadPeerSweep(5);
    const kept = item(true);
    const removed = item(true, true, true);
    sweep.watch(kept);
    sweep.watch(removed);
    sweep.unwatch(removed);
    await alive(kept.done);
    assert.equal(removed.probes, 0);
  });
});
