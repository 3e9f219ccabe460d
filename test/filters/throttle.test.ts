import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { defaultBurst } from '../../src/filters/throttle.js';
import { DIRECTIONS, ends, readToEnd, startHarness } from './harness.js';

/** Writes `total` bytes in 64 KiB chunks, honouring the socket's backpressure, then ends it. */
async function pump(socket: Socket, total: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let sent = 0; sent < total; sent += chunk.length) {
    const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
    if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
}

/** Counts received bytes and notes when the last one arrived. */
function receive(socket: Socket): Promise<{ bytes: number; lastAt: number }> {
  let bytes = 0;
  let lastAt = 0;
  socket.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    lastAt = performance.now();
  });
  return new Promise((resolve) => socket.once('end', () => resolve({ bytes, lastAt })));
}

for (const direction of DIRECTIONS) {
  test(`throttle, ${direction}: the rate is within 15% of bytes_per_second`, { timeout: 10_000 }, async () => {
    const rate = 1024 * 1024;
    const total = 512 * 1024;
    const harness = await startHarness({ filters: [{ type: 'throttle', direction, bytes_per_second: rate }] });
    try {
      const proxied = await harness.open();
      const { sender, receiver } = ends(proxied, direction);
      const received = receive(receiver);
      const startedAt = performance.now();
      await pump(sender, total);
      const { bytes, lastAt } = await received;
      assert.equal(bytes, total);
      // The bucket starts full: the first `burst` bytes pass at once.
      const expectedMs = ((total - defaultBurst(rate)) / rate) * 1000;
      const elapsedMs = lastAt - startedAt;
      assert.ok(Math.abs(elapsedMs - expectedMs) / expectedMs < 0.15, `took ${elapsedMs.toFixed(0)} ms, expected ${expectedMs.toFixed(0)} ms`);
      // The other direction is not throttled.
      const other = ends(proxied, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
      const otherReceived = readToEnd(other.receiver);
      const otherStart = performance.now();
      other.sender.end(Buffer.alloc(total));
      assert.equal((await otherReceived).length, total);
      assert.ok(performance.now() - otherStart < expectedMs / 2, 'the other direction runs at full speed');
    } finally {
      await harness.dispose();
    }
  });
}

test('throttling a 64 MiB stream keeps memory bounded and the rate within 15%', { timeout: 30_000 }, async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  const rate = 32 * 1024 * 1024;
  const total = 64 * 1024 * 1024;
  const harness = await startHarness({ filters: [{ type: 'throttle', direction: 'to_upstream', bytes_per_second: rate }] });
  try {
    const { client, upstream } = await harness.open();
    gc();
    const baseline = process.memoryUsage();
    let peakExternal = 0;
    let peakHeap = 0;
    const sampler = setInterval(() => {
      // A minor GC (about a millisecond) frees the chunks that are garbage; a full one would
      // stall the event loop for tens of milliseconds and skew the measured rate.
      gc({ type: 'minor' });
      const usage = process.memoryUsage();
      peakExternal = Math.max(peakExternal, usage.arrayBuffers - baseline.arrayBuffers);
      peakHeap = Math.max(peakHeap, usage.heapUsed - baseline.heapUsed);
    }, 50);
    try {
      const received = receive(upstream);
      const startedAt = performance.now();
      await pump(client, total);
      const { bytes, lastAt } = await received;
      assert.equal(bytes, total);
      const expectedMs = ((total - defaultBurst(rate)) / rate) * 1000;
      const elapsedMs = lastAt - startedAt;
      assert.ok(Math.abs(elapsedMs - expectedMs) / expectedMs < 0.15, `took ${elapsedMs.toFixed(0)} ms, expected ${expectedMs.toFixed(0)} ms`);
    } finally {
      clearInterval(sampler);
    }
    // Unbounded buffering would hold tens of MiB here; the chain holds at most a chunk or so.
    assert.ok(peakExternal < 8 * 1024 * 1024, `buffers grew by ${(peakExternal / 1048576).toFixed(1)} MiB`);
    assert.ok(peakHeap < 16 * 1024 * 1024, `heap grew by ${(peakHeap / 1048576).toFixed(1)} MiB`);
    console.log(`64 MiB at 32 MiB/s: peak buffer growth ${(peakExternal / 1048576).toFixed(2)} MiB, heap ${(peakHeap / 1048576).toFixed(2)} MiB`);
  } finally {
    await harness.dispose();
  }
});
