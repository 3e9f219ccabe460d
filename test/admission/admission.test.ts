import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AccessList } from '../../src/admission/access-list.js';
import { Admission, type AdmissionOptions, type AdmissionResult } from '../../src/admission/admission.js';
import { AdmissionQueue } from '../../src/admission/admission-queue.js';
import { seededRandom } from '../../bench/access-list.js';
import { ConnectionLimits, type Slot } from '../../src/admission/limits.js';
import { RateLimiter } from '../../src/admission/rate-limit.js';
import { Schedule } from '../../src/admission/schedule.js';

const MONDAY_NOON = new Date('2024-03-04T12:00:00Z');
const SUNDAY_NOON = new Date('2024-03-10T12:00:00Z');
const weekdays = (): Schedule => new Schedule({ timezone: 'UTC', windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '18:00' }] });

/** The rules, with the listener's waiting line (`queue`) they act on. */
function admission(options: Partial<AdmissionOptions> & { maxQueue?: number }): Admission & { queue: AdmissionQueue } {
  const { maxQueue = 1000, ...rest } = options;
  const queue = new AdmissionQueue(options.limits ?? new ConnectionLimits(), { maxSize: maxQueue });
  return Object.assign(new Admission({ onLimit: 'reject', queueTimeoutMs: 60_000, queue, ...rest }), { queue });
}

function slotOf(result: AdmissionResult | 'queue'): Slot {
  assert.ok(result !== 'queue' && result.admitted, `expected admission, got ${JSON.stringify(result)}`);
  return result.slot;
}

function reasonOf(result: AdmissionResult | 'queue'): string {
  return result === 'queue' ? 'queue' : result.admitted ? 'admitted' : result.reason;
}

/** Queue timers are unref'ed: hold the event loop open while a test awaits them. */
async function whileAlive<T>(promise: Promise<T>): Promise<T> {
  const hold = setInterval(() => {}, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(hold);
  }
}

describe('Admission', { timeout: 20_000 }, () => {
  it('applies the rules in order: acl, schedule, rate limit, limits', () => {
    let now = SUNDAY_NOON;
    const limits = new ConnectionLimits({ maxConnectionsPerIp: 1 });
    const rules = admission({
      access: AccessList.parse(['10.0.0.0/8'], ['10.9.0.0/16']),
      schedule: weekdays(),
      rateLimit: new RateLimiter({ limit: 2, perMs: 3_600_000 }),
      limits,
      now: () => now,
    });
    assert.equal(reasonOf(rules.admit('10.9.0.1')), 'acl', 'denied and outside the schedule: acl comes first');
    assert.equal(reasonOf(rules.admit('192.0.2.1')), 'acl');
    for (let i = 0; i < 5; i++) assert.equal(reasonOf(rules.admit('10.0.0.1')), 'schedule');
    now = MONDAY_NOON;
    // The schedule refusals spent no tokens: the full burst of 2 is still there.
    const slot = slotOf(rules.admit('10.0.0.1'));
    assert.equal(reasonOf(rules.admit('10.0.0.1')), 'limit', 'a token was spent, then the per-IP limit refused');
    assert.equal(reasonOf(rules.admit('10.0.0.1')), 'rate_limit', 'no tokens left: the rate limit refuses before the limits');
    assert.equal(limits.active, 1, 'refusals take no slot');
    slot.release();
    assert.equal(limits.active, 0);
  });

  it('treats an IPv4-mapped client as the IPv4 client for every rule', () => {
    const limits = new ConnectionLimits({ maxConnectionsPerIp: 1 });
    const rules = admission({ access: AccessList.parse(['127.0.0.0/8'], undefined), limits });
    const slot = slotOf(rules.admit('::ffff:127.0.0.1'));
    assert.equal(limits.activeFor('127.0.0.1'), 1);
    assert.equal(reasonOf(rules.admit('127.0.0.1')), 'limit');
    slot.release();
    assert.equal(reasonOf(rules.admit('::ffff:10.0.0.1')), 'acl');
  });

  it('admits everyone without rules; a slot released twice frees one place only', () => {
    const free = slotOf(admission({}).admit('203.0.113.1'));
    free.release();
    assert.doesNotThrow(() => free.release());
    const limits = new ConnectionLimits({ maxConnections: 2, maxConnectionsPerIp: 2 });
    const rules = admission({ limits });
    const first = slotOf(rules.admit('10.0.0.1'));
    const second = slotOf(rules.admit('10.0.0.1'));
    first.release();
    first.release(); // a teardown path running twice
    assert.equal(limits.active, 1, "the second release freed another connection's place");
    assert.equal(limits.activeFor('10.0.0.1'), 1);
    const third = slotOf(rules.admit('10.0.0.2'));
    assert.equal(reasonOf(rules.admit('10.0.0.3')), 'limit', 'the listener is full again: 2 of 2');
    second.release();
    third.release();
    assert.equal(limits.active, 0);
  });

  it('rejects over a limit with on_limit: reject', () => {
    const rules = admission({ limits: new ConnectionLimits({ maxConnections: 1 }) });
    slotOf(rules.admit('10.0.0.1'));
    assert.equal(reasonOf(rules.admit('10.0.0.2')), 'limit');
    assert.equal(rules.queue.length, 0);
  });

  it('queues over the limit and hands each freed slot to the first waiter, atomically', () => {
    const limits = new ConnectionLimits({ maxConnections: 2 });
    const rules = admission({ limits, onLimit: 'queue' });
    const first = slotOf(rules.admit('10.0.0.1'));
    const second = slotOf(rules.admit('10.0.0.2'));
    const served: [string, AdmissionResult][] = [];
    for (const ip of ['10.0.0.3', '10.0.0.4', '10.0.0.5']) {
      assert.equal(rules.admit(ip), 'queue');
      rules.wait(ip, (result) => served.push([ip, result]));
    }
    assert.equal(rules.queue.length, 3);
    first.release();
    assert.deepEqual(
      served.map(([ip]) => ip),
      ['10.0.0.3'],
    );
    assert.equal(limits.active, 2, 'the waiter took the freed slot in the same call');
    assert.equal(reasonOf(rules.admit('10.0.0.9')), 'queue', 'a newcomer does not overtake the waiters');
    second.release();
    assert.deepEqual(
      served.map(([ip]) => ip),
      ['10.0.0.3', '10.0.0.4'],
    );
    for (const [, result] of served) slotOf(result).release();
    assert.deepEqual(
      served.map(([ip]) => ip),
      ['10.0.0.3', '10.0.0.4', '10.0.0.5'],
    );
    assert.equal(rules.queue.length, 0);
    rules.queue.close();
  });

  it('does not let a waiter held by its per-IP limit block other addresses', () => {
    const limits = new ConnectionLimits({ maxConnections: 3, maxConnectionsPerIp: 1 });
    const rules = admission({ limits, onLimit: 'queue' });
    const busy = slotOf(rules.admit('10.0.0.1'));
    slotOf(rules.admit('10.0.0.2'));
    const third = slotOf(rules.admit('10.0.0.3'));
    const served: string[] = [];
    for (const ip of ['10.0.0.1', '10.0.0.4']) {
      assert.equal(rules.admit(ip), 'queue');
      rules.wait(ip, (result) => {
        assert.ok(result.admitted);
        served.push(ip);
      });
    }
    third.release();
    assert.deepEqual(served, ['10.0.0.4'], '10.0.0.1 is still at its own limit; 10.0.0.4 behind it goes first');
    busy.release();
    assert.deepEqual(served, ['10.0.0.4', '10.0.0.1']);
    assert.equal(limits.activeFor('10.0.0.1'), 1);
    rules.queue.close();
  });

  it('bounds the queue: beyond maxQueue, a client is refused with limit', () => {
    const rules = admission({ limits: new ConnectionLimits({ maxConnections: 0 }), onLimit: 'queue', maxQueue: 2 });
    const refusals: string[] = [];
    for (const ip of ['10.0.0.1', '10.0.0.2']) {
      assert.equal(rules.admit(ip), 'queue');
      rules.wait(ip, (result) => refusals.push(reasonOf(result)));
    }
    assert.equal(reasonOf(rules.admit('10.0.0.3')), 'limit');
    rules.wait('10.0.0.3', (result) => refusals.push(reasonOf(result)));
    assert.deepEqual(refusals, ['limit'], 'a late wait() on a full queue is refused at once');
    rules.queue.close();
    assert.deepEqual(refusals, ['limit', 'shutdown', 'shutdown']);
  });

  it('refuses a waiter with queue_timeout when its time is up, and frees its place', async () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    const rules = admission({ limits, onLimit: 'queue', queueTimeoutMs: 20 });
    const slot = slotOf(rules.admit('10.0.0.1'));
    assert.equal(rules.admit('10.0.0.2'), 'queue');
    const started = performance.now();
    const result = await whileAlive(new Promise<AdmissionResult>((resolve) => rules.wait('10.0.0.2', resolve)));
    assert.equal(reasonOf(result), 'queue_timeout');
    assert.ok(performance.now() - started >= 15, 'not before its time');
    assert.equal(rules.queue.length, 0);
    slot.release();
    assert.equal(limits.active, 0, 'the timed-out waiter took nothing');
  });

  it('withdraws a waiter that left: never called back, its turn passes on', () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    const rules = admission({ limits, onLimit: 'queue' });
    const slot = slotOf(rules.admit('10.0.0.1'));
    const served: string[] = [];
    const cancelLeaver = rules.wait('10.0.0.2', () => served.push('leaver'));
    rules.wait('10.0.0.3', () => served.push('stayer'));
    cancelLeaver();
    cancelLeaver();
    assert.equal(rules.queue.length, 1);
    slot.release();
    assert.deepEqual(served, ['stayer']);
    rules.queue.close();
  });

  it('answers wait() at once when room is already free', () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    const rules = admission({ limits, onLimit: 'queue' });
    let result: AdmissionResult | undefined;
    rules.wait('10.0.0.1', (r) => (result = r));
    slotOf(result!).release();
    assert.equal(limits.active, 0);
  });

  it('after close, refuses everyone with shutdown and stops serving waiters', () => {
    const limits = new ConnectionLimits({ maxConnections: 1 });
    const rules = admission({ limits, onLimit: 'queue' });
    const slot = slotOf(rules.admit('10.0.0.1'));
    const results: string[] = [];
    rules.wait('10.0.0.2', (result) => results.push(reasonOf(result)));
    rules.queue.close();
    assert.deepEqual(results, ['shutdown']);
    assert.equal(reasonOf(rules.admit('10.0.0.3')), 'shutdown');
    slot.release();
    assert.equal(limits.active, 0);
  });

  it('keeps counts exact through a random storm of arrivals, departures and leavers', () => {
    const random = seededRandom(11);
    const limits = new ConnectionLimits({ maxConnections: 20, maxConnectionsPerIp: 4 });
    const rules = admission({ limits, onLimit: 'queue', maxQueue: 30 });
    const held: Slot[] = [];
    interface Waiter {
      answers: number;
      withdrawn: boolean;
      cancel: () => void;
    }
    const waiters: Waiter[] = [];
    let servedFromQueue = 0;
    for (let step = 0; step < 20_000; step++) {
      const roll = random();
      if (roll < 0.5) {
        const ip = `10.0.0.${Math.floor(random() * 8)}`;
        const result = rules.admit(ip);
        if (result === 'queue') {
          const waiter: Waiter = { answers: 0, withdrawn: false, cancel: () => {} };
          waiter.cancel = rules.wait(ip, (answer) => {
            assert.equal(waiter.withdrawn, false, 'a withdrawn waiter is never answered');
            waiter.answers++;
            if (answer.admitted) {
              servedFromQueue++;
              held.push(answer.slot);
            }
          });
          waiters.push(waiter);
        } else if (result.admitted) {
          held.push(result.slot);
        }
      } else if (roll < 0.9 && held.length > 0) {
        const slot = held.splice(Math.floor(random() * held.length), 1)[0]!;
        slot.release();
        if (random() < 0.2) slot.release();
      } else if (waiters.length > 0) {
        const waiter = waiters[Math.floor(random() * waiters.length)]!;
        if (waiter.answers === 0) waiter.withdrawn = true;
        waiter.cancel(); // a no-op when already answered
      }
      assert.equal(limits.active, held.length, `step ${step}`);
      assert.ok(limits.active <= 20);
    }
    rules.queue.close();
    assert.ok(servedFromQueue > 100, `the queue must be exercised (served ${servedFromQueue})`);
    for (const waiter of waiters) assert.equal(waiter.answers, waiter.withdrawn ? 0 : 1, 'every waiter answered exactly once');
    for (const slot of held) slot.release();
    assert.equal(limits.active, 0);
    assert.equal(limits.trackedIps, 0);
  });
});
