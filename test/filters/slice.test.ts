import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSliceFilter } from '../../src/filters/slice.js';
import { DIRECTIONS, ends, readToEnd, startHarness } from './harness.js';

test('slice cuts a chunk into pushes of at most `size` bytes', () => {
  const pieces: string[] = [];
  const filter = createSliceFilter({ size: 4, delayMs: 0 });
  assert.equal(filter.data(Buffer.from('abcdefghij'), (chunk) => void pieces.push(chunk.toString())), undefined);
  assert.deepEqual(pieces, ['abcd', 'efgh', 'ij']);
});

for (const direction of DIRECTIONS) {
  test(`slice with a delay, ${direction}: the receiver gets small separate segments, bytes intact`, { timeout: 10_000 }, async () => {
    const harness = await startHarness({ filters: [{ type: 'slice', direction, size: 3, delay: '10ms' }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const sizes: number[] = [];
      receiver.on('data', (chunk: Buffer) => sizes.push(chunk.length));
      const received = readToEnd(receiver);
      sender.end('hello, sliced world');
      assert.equal((await received).toString(), 'hello, sliced world');
      assert.ok(sizes.length >= 7 && sizes.every((size) => size <= 3), `segments: ${sizes.join(',')}`);
    } finally {
      await harness.dispose();
    }
  });
}
