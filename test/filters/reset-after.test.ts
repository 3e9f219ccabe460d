import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { DIRECTIONS, closeOutcome, ends, readToEnd, startHarness } from './harness.js';

for (const direction of DIRECTIONS) {
  test(`reset_after bytes, ${direction}: that many bytes pass, then both peers get ECONNRESET`, { timeout: 10_000 }, async () => {
    const harness = await startHarness({ filters: [{ type: 'reset_after', direction, bytes: 10 }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = readToEnd(receiver);
      const receiverOutcome = closeOutcome(receiver);
      const senderOutcome = closeOutcome(sender);
      sender.write('0123456');
      sender.write('789abcdef');
      assert.deepEqual(await proxied.closed, { reason: 'filter', reset: true });
      assert.equal(await senderOutcome, 'ECONNRESET');
      assert.equal(await receiverOutcome, 'ECONNRESET');
      assert.equal((await received).toString(), '0123456789');
    } finally {
      await harness.dispose();
    }
  });
}

test('reset_after a duration resets an idle connection', { timeout: 10_000 }, async () => {
  const harness = await startHarness({ filters: [{ type: 'reset_after', after: '100ms' }] });
  try {
    const startedAt = performance.now();
    const { client } = await harness.open();
    assert.equal(await closeOutcome(client), 'ECONNRESET');
    const elapsed = performance.now() - startedAt;
    assert.ok(elapsed >= 95 && elapsed < 1000, `reset after ${elapsed.toFixed(0)} ms`);
  } finally {
    await harness.dispose();
  }
});
