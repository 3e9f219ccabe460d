import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { DIRECTIONS, closeOutcome, ends, readToEnd, startHarness } from './harness.js';

for (const direction of DIRECTIONS) {
  test(`reset_after bytes, ${direction}: that many bytes pass, then the connection is reset`, { timeout: 10_000 }, async () => {
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
      // A reset right behind data may reach a Linux receiver as a plain end of stream.
      assert.match(await receiverOutcome, /^(ECONNRESET|end)$/);
      assert.equal((await received).toString(), '0123456789');
    } finally {
      await harness.dispose();
    }
  });
}

for (const direction of DIRECTIONS) {
  test(`reset_after 0 bytes, ${direction}: the first byte resets both peers, nothing passes`, { timeout: 10_000 }, async () => {
    const harness = await startHarness({ filters: [{ type: 'reset_after', direction, bytes: 0 }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = readToEnd(receiver);
      const outcomes = Promise.all([closeOutcome(sender), closeOutcome(receiver)]);
      sender.write('x');
      assert.deepEqual(await outcomes, ['ECONNRESET', 'ECONNRESET']);
      assert.equal((await received).length, 0);
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
