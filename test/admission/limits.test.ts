import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionLimits, type Slot } from '../../src/admission/limits.js';
import { seededRandom } from '../../bench/access-list.js';

function acquire(limits: ConnectionLimits, ip: string): Slot {
  const slot = limits.tryAcquire(ip);
  assert.notEqual(slot, 'limit', `acquire for ${ip}`);
  return slot as Slot;
}

describe('ConnectionLimits', { timeout: 20_000 }, () => {
  it('enforces the listener limit', () => {
    const limits = new ConnectionLimits({ maxConnections: 2 });
    const first = acquire(limits, '10.0.0.1');
    acquire(limits, '10.0.0.2');
    assert.equal(limits.tryAcquire('10.0.0.3'), 'limit');
    assert.equal(limits.full, true);
    first.release();
    assert.equal(limits.full, false);
    acquire(limits, '10.0.0.3');
    assert.equal(limits.active, 2);
  });

  it('enforces the per-IP limit independently for each address', () => {
    const limits = new ConnectionLimits({ maxConnectionsPerIp: 2 });
    const first = acquire(limits, '10.0.0.1');
    acquire(limits, '10.0.0.1');
    assert.equal(limits.canAcquire('10.0.0.1'), false);
    assert.equal(limits.tryAcquire('10.0.0.1'), 'limit');
    acquire(limits, '10.0.0.2');
    assert.equal(limits.activeFor('10.0.0.1'), 2);
    first.release();
    assert.equal(limits.activeFor('10.0.0.1'), 1);
    acquire(limits, '10.0.0.1');
  });

  it('without limits, counts but never refuses', () => {
    const limits = new ConnectionLimits();
    for (let i = 0; i < 1000; i++) acquire(limits, '::1');
    assert.equal(limits.active, 1000);
    assert.equal(limits.activeFor('::1'), 1000);
  });

  it('ignores a second release and deletes per-IP entries at zero', () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    const slot = acquire(limits, '10.0.0.1');
    slot.release();
    slot.release();
    assert.equal(limits.active, 0);
    assert.equal(limits.activeFor('10.0.0.1'), 0);
    assert.equal(limits.trackedIps, 0);
    acquire(limits, '10.0.0.2');
    assert.equal(limits.tryAcquire('10.0.0.3'), 'limit', 'the double release did not free a second slot');
  });

  it('never drifts under a random storm of acquires and (double) releases', () => {
    const random = seededRandom(7);
    const maxConnections = 40;
    const maxConnectionsPerIp = 6;
    const limits = new ConnectionLimits({ maxConnections, maxConnectionsPerIp });
    const held: { ip: string; slot: Slot }[] = [];
    const released: Slot[] = [];
    let refusals = 0;
    for (let step = 0; step < 50_000; step++) {
      const roll = random();
      if (roll < 0.55) {
        const ip = `10.0.0.${Math.floor(random() * 12)}`;
        const heldByIp = held.filter((entry) => entry.ip === ip).length;
        const expectFits = heldByIp < maxConnectionsPerIp && held.length < maxConnections;
        const slot = limits.tryAcquire(ip);
        assert.equal(slot !== 'limit', expectFits, `step ${step}: acquire ${ip}`);
        if (slot === 'limit') refusals++;
        else held.push({ ip, slot });
      } else if (roll < 0.9 && held.length > 0) {
        const entry = held.splice(Math.floor(random() * held.length), 1)[0]!;
        entry.slot.release();
        released.push(entry.slot);
      } else if (released.length > 0) {
        released[Math.floor(random() * released.length)]!.release(); // a teardown path running twice
      }
      assert.equal(limits.active, held.length, `step ${step}: active`);
    }
    assert.ok(refusals > 1000, `the storm must hit the limits (refusals: ${refusals})`);
    for (let i = 0; i < 12; i++) assert.equal(limits.activeFor(`10.0.0.${i}`), held.filter((entry) => entry.ip === `10.0.0.${i}`).length);
    for (const entry of held) entry.slot.release();
    for (const slot of released) slot.release();
    assert.equal(limits.active, 0);
    assert.equal(limits.trackedIps, 0);
  });

  it('notifies release listeners after the counts change, once per real release', () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    const seen: number[] = [];
    const unsubscribe = limits.onRelease(() => seen.push(limits.active));
    const slot = acquire(limits, '10.0.0.1');
    slot.release();
    slot.release();
    assert.deepEqual(seen, [0]);
    unsubscribe();
    acquire(limits, '10.0.0.1').release();
    assert.deepEqual(seen, [0]);
  });

  it('reconfigures in place, keeping counts and announcing new room', () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    acquire(limits, '10.0.0.1');
    let notified = 0;
    limits.onRelease(() => notified++);
    limits.reconfigure({ maxConnections: 2, maxConnectionsPerIp: 1 });
    assert.equal(notified, 1);
    assert.equal(limits.active, 1);
    assert.equal(limits.tryAcquire('10.0.0.1'), 'limit', 'the open connection counts against the new per-IP limit');
    acquire(limits, '10.0.0.2');
  });

  it('rejects invalid limits', () => {
    assert.throws(() => new ConnectionLimits({ maxConnections: -1 }), /maxConnections must be an integer >= 0/);
    assert.throws(() => new ConnectionLimits({ maxConnectionsPerIp: 1.5 }), /maxConnectionsPerIp/);
  });
});
