import assert from 'node:assert/strict';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { DIRECTIONS, ends, readBytes, readToEnd, startHarness } from './harness.js';

for (const direction of DIRECTIONS) {
  test(`delay, ${direction}: adds the latency, only in that direction`, { timeout: 10_000 }, async () => {
    const harness = await startHarness({ filters: [{ type: 'delay', direction, latency: '300ms' }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      let startedAt = performance.now();
      sender.write('ping');
      assert.equal((await readBytes(receiver, 4)).toString(), 'ping');
      const delayed = performance.now() - startedAt;
      assert.ok(delayed >= 295 && delayed < 1500, `took ${delayed.toFixed(0)} ms`);

      const other = ends(proxied, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
      startedAt = performance.now();
      other.sender.write('pong');
      await readBytes(other.receiver, 4);
      assert.ok(performance.now() - startedAt < 250, 'the other direction is not delayed');
    } finally {
      await harness.dispose();
    }
  });
}

test('delay with jitter keeps the order, pipelines chunks, and delays the FIN after the data', { timeout: 10_000 }, async () => {
  const harness = await startHarness({ filters: [{ type: 'delay', direction: 'to_upstream', latency: '100ms', jitter: '50ms' }] });
  try {
    const { client, upstream } = await harness.open();
    const received = readToEnd(upstream);
    const startedAt = performance.now();
    const expected: string[] = [];
    // 20 separate chunks, 5 ms apart: pipelined, the whole takes ~latency + 100 ms, not 20 x latency.
    for (let i = 0; i < 20; i++) {
      const piece = `<${i}>`;
      expected.push(piece);
      client.write(piece);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    client.end();
    assert.equal((await received).toString(), expected.join(''));
    const elapsed = performance.now() - startedAt;
    assert.ok(elapsed >= 100 && elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
  } finally {
    await harness.dispose();
  }
});

test('delay bounds the bytes it holds: the sender is slowed down beyond max_held', { timeout: 10_000 }, async () => {
  const harness = await startHarness({ filters: [{ type: 'delay', direction: 'to_upstream', latency: '100ms', max_held: '64KiB' }] });
  try {
    const { client, upstream, proxyFront } = await harness.open();
    const received = readToEnd(upstream);
    const startedAt = performance.now();
    // 1 MiB through a 64 KiB window with 100 ms latency, instead of ~100 ms without the bound.
    const total = 1024 * 1024;
    client.end(Buffer.alloc(total, 1));
    await once(proxyFront, 'end');
    assert.equal((await received).length, total);
    const elapsed = performance.now() - startedAt;
    // A chunk may overshoot the limit once, so a window is up to 128 KiB: at least 8 latencies.
    assert.ok(elapsed >= 700, `1 MiB through a 64 KiB window took only ${elapsed.toFixed(0)} ms`);
  } finally {
    await harness.dispose();
  }
});
