import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIRECTIONS, ends, startFilterProxy } from '../helpers/filter-proxy.js';
import { closeOutcome, readUntilClosed } from '../helpers/sockets.js';

for (const direction of DIRECTIONS) {
  test(`reset_after bytes, ${direction}: that many bytes pass, then the connection is reset`, { timeout: 10_000 }, async () => {
    const harness = await startFilterProxy({ filters: [{ type: 'reset_after', direction, bytes: 10 }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = readUntilClosed(receiver);
      const receiverOutcome = closeOutcome(receiver);
      const senderOutcome = closeOutcome(sender);
      sender.write('0123456');
      sender.write('789abcdef');
      const line = await proxied.closed;
      assert.equal(line.reason, 'filter');
      assert.equal(await senderOutcome, 'ECONNRESET', 'the proxy resets, it does not close');
      // What the proxy read is counted, what it wrote is the ten bytes (to_client) or nothing.
      assert.equal(direction === 'to_upstream' ? line.bytes_to_client : line.bytes_from_client, 0);
      if (direction === 'to_client') assert.equal(line.bytes_to_client, 10);
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
    const harness = await startFilterProxy({ filters: [{ type: 'reset_after', direction, bytes: 0 }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = readUntilClosed(receiver);
      const outcomes = Promise.all([closeOutcome(sender), closeOutcome(receiver)]);
      sender.write('x');
      assert.deepEqual(await outcomes, ['ECONNRESET', 'ECONNRESET']);
      assert.equal((await received).length, 0);
      const line = await proxied.closed;
      assert.equal(line.reason, 'filter');
      assert.equal(line.bytes_to_client, 0);
    } finally {
      await harness.dispose();
    }
  });
}

test('reset_after a duration resets an idle connection', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'reset_after', after: '100ms' }] });
  try {
    const proxied = await harness.open();
    assert.equal(await closeOutcome(proxied.client), 'ECONNRESET');
    const line = await proxied.closed;
    assert.equal(line.reason, 'filter');
    // The proxy's own measure of the connection's life: never shorter than `after`.
    assert.ok(Number(line.duration_ms) >= 99, `reset after ${String(line.duration_ms)} ms`);
  } finally {
    await harness.dispose();
  }
});
