import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter } from '../../src/admission/rate-limit.js';

describe('RateLimiter', { timeout: 20_000 }, () => {
  it('allows a burst of `limit`, then refuses', () => {
    const limiter = new RateLimiter({ limit: 3, perMs: 1000 });
    assert.deepEqual(
      [1, 2, 3, 4].map(() => limiter.take('10.0.0.1', 0)),
      [true, true, true, false],
    );
  });

  it('refills continuously, one token per perMs/limit, up to the limit', () => {
    const limiter = new RateLimiter({ limit: 3, perMs: 1000 });
    for (let i = 0; i < 3; i++) limiter.take('a', 0);
    assert.equal(limiter.take('a', 300), false, 'less than one token refilled');
    assert.equal(limiter.take('a', 334), true, 'one token after a third of the period');
    assert.equal(limiter.take('a', 334), false);
    assert.equal(limiter.take('a', 10_000), true, 'a long pause refills to the limit, no more');
    assert.equal(limiter.take('a', 10_000), true);
    assert.equal(limiter.take('a', 10_000), true);
    assert.equal(limiter.take('a', 10_000), false);
  });

  it('refills exactly after whole periods', () => {
    const limiter = new RateLimiter({ limit: 7, perMs: 3000 });
    for (let period = 0; period < 50; period++) {
      const now = period * 3000;
      for (let i = 0; i < 7; i++) assert.equal(limiter.take('a', now), true, `period ${period}, take ${i}`);
      assert.equal(limiter.take('a', now), false);
    }
  });

  it('keeps one bucket per key', () => {
    const limiter = new RateLimiter({ limit: 1, perMs: 1000 });
    assert.equal(limiter.take('a', 0), true);
    assert.equal(limiter.take('a', 0), false);
    assert.equal(limiter.take('b', 0), true);
    assert.equal(limiter.size, 2);
  });

  it('forgets buckets idle for a whole period (they are full again)', () => {
    const limiter = new RateLimiter({ limit: 2, perMs: 1000 });
    limiter.take('idle', 0);
    limiter.take('busy', 0);
    limiter.take('busy', 600);
    limiter.take('other', 1000);
    assert.equal(limiter.size, 2, 'idle dropped, busy kept');
    // Kept state: 1 token at 600 ms, 1.8 at 1000 ms, so one take and not two (a new bucket would allow two).
    assert.equal(limiter.take('busy', 1000), true);
    assert.equal(limiter.take('busy', 1000), false);
  });

  it('evicts the least recently used key at maxEntries', () => {
    const limiter = new RateLimiter({ limit: 1, perMs: 60_000, maxEntries: 3 });
    for (const key of ['a', 'b', 'c']) limiter.take(key, 0);
    assert.equal(limiter.take('a', 1), false, 'touching a makes b the oldest');
    limiter.take('d', 2);
    assert.equal(limiter.size, 3);
    assert.equal(limiter.take('a', 3), false, 'a was kept');
    assert.equal(limiter.take('b', 4), true, 'b was evicted, so it starts afresh');
  });

  it('stays bounded under 1,000,000 distinct keys', () => {
    const limiter = new RateLimiter({ limit: 5, perMs: 60_000, maxEntries: 50_000 });
    let maxSize = 0;
    for (let i = 0; i < 1_000_000; i++) {
      // All within one period, so only eviction (not expiry) can bound the table.
      assert.equal(limiter.take(`k${i}`, i / 1000), true);
      if (limiter.size > maxSize) maxSize = limiter.size;
    }
    assert.equal(maxSize, 50_000);
  });

  it('rejects invalid options', () => {
    assert.throws(() => new RateLimiter({ limit: 0, perMs: 1000 }), /limit must be an integer >= 1/);
    assert.throws(() => new RateLimiter({ limit: 1.5, perMs: 1000 }), /limit/);
    assert.throws(() => new RateLimiter({ limit: 1, perMs: 0 }), /per must be a positive duration/);
    assert.throws(() => new RateLimiter({ limit: 1, perMs: 1000, maxEntries: 0 }), /maxEntries/);
  });
});
