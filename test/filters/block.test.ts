/** The block filter, through the real proxy: what passes, how the peers see the close, and the access log. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIRECTIONS, ends, startFilterProxy } from '../helpers/filter-proxy.js';
import { closeOutcome, readBytes, readToEnd, readUntilClosed } from '../helpers/sockets.js';

for (const direction of DIRECTIONS) {
  test(`block, ${direction}: the match closes the connection and nothing from the match on passes`, { timeout: 10_000 }, async () => {
    const harness = await startFilterProxy({ filters: [{ type: 'block', direction, match: 'DROP TABLE', hold: '5s' }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = readUntilClosed(receiver);
      const senderClosed = closeOutcome(sender);
      sender.write('SELECT 1; DROP TA');
      await readBytes(receiver, 'SELECT 1; '.length);
      sender.write('BLE users; SELECT 2;');
      const line = await proxied.closed;
      assert.equal(line.reason, 'filter');
      assert.equal((await received).toString(), 'SELECT 1; ', 'only the bytes before the match passed');
      assert.equal(await senderClosed, 'end', 'the sender sees a normal close');
      // The access log counts what the proxy read from the client and wrote to it.
      const sent = 'SELECT 1; DROP TABLE users; SELECT 2;'.length;
      assert.deepEqual([line.bytes_from_client, line.bytes_to_client], direction === 'to_upstream' ? [sent, 0] : [0, 'SELECT 1; '.length]);
      const blocked = harness.lines.find((l) => l.event === 'filter_block');
      assert.equal(blocked?.match, 'DROP TABLE');
      assert.equal(blocked?.direction, direction);
    } finally {
      await harness.dispose();
    }
  });
}

test('block with a regex; data without a match passes in full, in both directions', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'block', match: '/rm\\s+-rf/i' }] });
  try {
    const first = await harness.open();
    const atUpstream = readToEnd(first.upstream);
    const atClient = readToEnd(first.client);
    first.client.end('ls -la; rm -r tmp');
    first.upstream.end('total 0');
    assert.equal((await atUpstream).toString(), 'ls -la; rm -r tmp');
    assert.equal((await atClient).toString(), 'total 0');
    const firstLine = await first.closed;
    assert.notEqual(firstLine.reason, 'filter');
    assert.deepEqual([firstLine.bytes_from_client, firstLine.bytes_to_client], [17, 7]);

    const second = await harness.open();
    const received = readUntilClosed(second.upstream);
    second.client.write('echo; RM   -RF /');
    assert.equal((await second.closed).reason, 'filter');
    assert.equal((await received).toString(), 'echo; ');
  } finally {
    await harness.dispose();
  }
});

test('a match completed after the hold released its start still closes the connection', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'block', direction: 'to_upstream', match: 'abcdef', hold: '20ms' }] });
  try {
    const proxied = await harness.open();
    const received = readUntilClosed(proxied.upstream);
    proxied.client.write('xxabc');
    // After the hold, the held "abc" is released...
    assert.equal((await readBytes(proxied.upstream, 5)).toString(), 'xxabc');
    // ...but remembered: the rest of the match still blocks.
    proxied.client.write('def and more');
    const line = await proxied.closed;
    assert.equal(line.reason, 'filter');
    assert.equal(line.bytes_from_client, 'xxabcdef and more'.length);
    assert.equal((await received).toString(), 'xxabc');
  } finally {
    await harness.dispose();
  }
});
