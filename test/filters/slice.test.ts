import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { createSliceFilter } from '../../src/filters/slice.js';
import { DIRECTIONS, ends, startFilterProxy } from '../helpers/filter-proxy.js';
import { readToEnd } from '../helpers/sockets.js';

test('slice cuts a chunk into pushes of at most `size` bytes', () => {
  const pieces: string[] = [];
  const filter = createSliceFilter({ size: 4, delayMs: 0 });
  assert.equal(
    filter.data(Buffer.from('abcdefghij'), (chunk) => void pieces.push(chunk.toString())),
    undefined,
  );
  assert.deepEqual(pieces, ['abcd', 'efgh', 'ij']);
});

for (const direction of DIRECTIONS) {
  test(`slice with a delay, ${direction}: the proxy writes small pieces, spaced out, bytes intact`, { timeout: 10_000 }, async () => {
    const harness = await startFilterProxy({ filters: [{ type: 'slice', direction, size: 3, delay: '20ms' }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      // Record the proxy's writes to the receiving side (what goes out as separate segments).
      const destination = direction === 'to_upstream' ? proxied.proxyBack : proxied.proxyFront;
      const writes: { text: string; at: number }[] = [];
      const write = destination.write.bind(destination);
      destination.write = (chunk: Buffer) => {
        writes.push({ text: chunk.toString(), at: performance.now() });
        return write(chunk);
      };
      const received = readToEnd(receiver);
      sender.end('hello, sliced world');
      assert.equal((await received).toString(), 'hello, sliced world');
      assert.deepEqual(
        writes.map((w) => w.text),
        ['hel', 'lo,', ' sl', 'ice', 'd w', 'orl', 'd'],
      );
      // A lower bound only: a timer never fires early, it may fire late on a busy machine.
      for (let i = 1; i < writes.length; i++) assert.ok(writes[i]!.at - writes[i - 1]!.at >= 19, 'pieces are spaced by the delay');
      const other = ends(proxied, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
      other.sender.end();
      const line = await proxied.closed;
      const sent = 'hello, sliced world'.length;
      assert.deepEqual([line.bytes_from_client, line.bytes_to_client], direction === 'to_upstream' ? [sent, 0] : [0, sent]);
    } finally {
      await harness.dispose();
    }
  });
}
