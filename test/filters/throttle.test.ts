/**
 * The throttle filter through the real proxy. The rate is checked on the proxy's own clock
 * (its capture): the bytes handed on by any instant never exceed the bucket plus the rate
 * times the time since the first byte came in. A busy machine can only make it slower,
 * which no assertion here depends on.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { defaultBurst } from '../../src/filters/throttle.js';
import { DIRECTIONS, captured, ends, payloads, startFilterProxy, streamLabels, type StreamLabels } from '../helpers/filter-proxy.js';
import type { Segment } from '../inspect/pcap-reader.js';
import { readToEnd } from '../helpers/sockets.js';

/** Writes `total` bytes in 64 KiB chunks, honouring the socket's backpressure, then ends it. */
async function pump(socket: Socket, total: number): Promise<void> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let sent = 0; sent < total; sent += chunk.length) {
    const piece = total - sent >= chunk.length ? chunk : chunk.subarray(0, total - sent);
    if (!socket.write(piece)) await new Promise((resolve) => socket.once('drain', resolve));
  }
  socket.end();
}

/** Counts received bytes until the end of the stream. */
function countToEnd(socket: Socket): Promise<number> {
  let bytes = 0;
  socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
  return new Promise((resolve) => socket.once('end', () => resolve(bytes)));
}

/** The largest excess, in bytes, of what left the proxy over what the bucket allowed by then. */
function excessOverBucket(into: Segment[], out: Segment[], rate: number, burst: number): number {
  const start = into[0]!.time;
  let sent = 0;
  let excess = -Infinity;
  for (const segment of out) {
    sent += segment.payload.length;
    // The capture stamps microseconds; the filter's clock has finer steps: allow one microsecond of rate.
    const allowed = burst + rate * (segment.time - start + 1e-6);
    excess = Math.max(excess, sent - allowed);
  }
  return excess;
}

for (const direction of DIRECTIONS) {
  test(`throttle, ${direction}: never faster than bytes_per_second, the other direction untouched`, { timeout: 20_000 }, async () => {
    const rate = 1024 * 1024;
    const total = 512 * 1024;
    let labels!: StreamLabels;
    const segments = await captured({ filters: [{ type: 'throttle', direction, bytes_per_second: rate }] }, async (harness) => {
      const proxied = await harness.open();
      labels = streamLabels(proxied);
      const { sender, receiver } = ends(proxied, direction);
      const received = countToEnd(receiver);
      await pump(sender, total);
      assert.equal(await received, total);
      const other = ends(proxied, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
      const otherReceived = readToEnd(other.receiver);
      other.sender.end(Buffer.alloc(total));
      assert.equal((await otherReceived).length, total);
      const line = await proxied.closed;
      assert.deepEqual([line.bytes_from_client, line.bytes_to_client], [total, total]);
    });
    const [into, out, otherInto, otherOut] =
      direction === 'to_upstream'
        ? [
            payloads(segments, labels.client, labels.front),
            payloads(segments, labels.back, labels.upstream),
            payloads(segments, labels.upstream, labels.back),
            payloads(segments, labels.front, labels.client),
          ]
        : [
            payloads(segments, labels.upstream, labels.back),
            payloads(segments, labels.front, labels.client),
            payloads(segments, labels.client, labels.front),
            payloads(segments, labels.back, labels.upstream),
          ];
    const excess = excessOverBucket(into, out, rate, defaultBurst(rate));
    assert.ok(excess <= 0, `${excess.toFixed(0)} bytes beyond what the rate allows`);
    // Paced: the bytes left in many pieces spread over at least (total - burst) / rate.
    const spreadMs = (out.at(-1)!.time - into[0]!.time) * 1000;
    assert.ok(spreadMs >= ((total - defaultBurst(rate)) / rate) * 1000 - 1, `all out within ${spreadMs.toFixed(0)} ms`);
    // Unthrottled: every piece the other direction received was handed on at once (within
    // the same call, so well under one bucket's worth of time at the throttled rate).
    assert.equal(
      otherOut.reduce((sum, s) => sum + s.payload.length, 0),
      total,
    );
    const lastIn = otherInto.at(-1)!.time;
    assert.ok((otherOut.at(-1)!.time - lastIn) * 1000 < 50, 'the other direction is held back');
  });
}

test('throttling a 64 MiB stream keeps memory bounded', { timeout: 30_000 }, async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as (options?: { type: 'minor' | 'major' }) => void;
  const rate = 32 * 1024 * 1024;
  const total = 64 * 1024 * 1024;
  const harness = await startFilterProxy({ filters: [{ type: 'throttle', direction: 'to_upstream', bytes_per_second: rate }] });
  try {
    const proxied = await harness.open();
    gc();
    const baseline = process.memoryUsage();
    let peakExternal = 0;
    let peakHeap = 0;
    const sampler = setInterval(() => {
      // A minor GC (about a millisecond) frees the chunks that are garbage.
      gc({ type: 'minor' });
      const usage = process.memoryUsage();
      peakExternal = Math.max(peakExternal, usage.arrayBuffers - baseline.arrayBuffers);
      peakHeap = Math.max(peakHeap, usage.heapUsed - baseline.heapUsed);
    }, 50);
    try {
      const received = countToEnd(proxied.upstream);
      await pump(proxied.client, total);
      assert.equal(await received, total);
    } finally {
      clearInterval(sampler);
    }
    proxied.upstream.end();
    assert.equal((await proxied.closed).bytes_from_client, total);
    // Unbounded buffering would hold tens of MiB here; the chain holds at most a chunk or so.
    assert.ok(peakExternal < 8 * 1024 * 1024, `buffers grew by ${(peakExternal / 1048576).toFixed(1)} MiB`);
    assert.ok(peakHeap < 16 * 1024 * 1024, `heap grew by ${(peakHeap / 1048576).toFixed(1)} MiB`);
  } finally {
    await harness.dispose();
  }
});
