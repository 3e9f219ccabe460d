/**
 * The delay filter through the real proxy. Its timing is read from the proxy's capture (the
 * proxy's clock, as the data entered and left the filters), so only lower bounds and
 * orderings are asserted: never how fast a loaded machine runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DIRECTIONS, captured, ends, payloads, startFilterProxy, streamLabels, type StreamLabels } from '../helpers/filter-proxy.js';
import { readBytes, readToEnd } from '../helpers/sockets.js';

/** Where a direction's data enters the proxy and where it leaves it, as capture endpoints. */
function hops(labels: StreamLabels, direction: (typeof DIRECTIONS)[number]): { into: [string, string]; out: [string, string] } {
  return direction === 'to_upstream'
    ? { into: [labels.client, labels.front], out: [labels.back, labels.upstream] }
    : { into: [labels.upstream, labels.back], out: [labels.front, labels.client] };
}

for (const direction of DIRECTIONS) {
  test(`delay, ${direction}: adds the latency, only in that direction`, { timeout: 10_000 }, async () => {
    let labels!: StreamLabels;
    const segments = await captured({ filters: [{ type: 'delay', direction, latency: '300ms' }] }, async (harness) => {
      const proxied = await harness.open();
      labels = streamLabels(proxied);
      const { sender, receiver } = ends(proxied, direction);
      sender.write('ping');
      assert.equal((await readBytes(receiver, 4)).toString(), 'ping');
      const other = ends(proxied, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
      other.sender.write('pong');
      assert.equal((await readBytes(other.receiver, 4)).toString(), 'pong');
    });
    const delayed = hops(labels, direction);
    const [pingIn] = payloads(segments, ...delayed.into);
    const [pingOut] = payloads(segments, ...delayed.out);
    assert.equal(pingOut?.payload.toString(), 'ping');
    const held = (pingOut.time - pingIn!.time) * 1000;
    // Timers fire on whole milliseconds: up to one early against the capture's microseconds.
    assert.ok(held >= 299, `held ${held.toFixed(1)} ms`);
    const undelayed = hops(labels, direction === 'to_upstream' ? 'to_client' : 'to_upstream');
    const [pongIn] = payloads(segments, ...undelayed.into);
    const [pongOut] = payloads(segments, ...undelayed.out);
    assert.equal(pongOut?.payload.toString(), 'pong');
    // Handed on in the same call that received it: nothing like the latency in between.
    assert.ok((pongOut.time - pongIn!.time) * 1000 < 300, 'the other direction is not delayed');
  });
}

test('delay with jitter keeps the order, pipelines chunks, and delays the FIN after the data', { timeout: 10_000 }, async () => {
  let labels!: StreamLabels;
  const expected: string[] = [];
  const segments = await captured({ filters: [{ type: 'delay', direction: 'to_upstream', latency: '100ms', jitter: '50ms' }] }, async (harness) => {
    const proxied = await harness.open();
    labels = streamLabels(proxied);
    const received = readToEnd(proxied.upstream);
    // 20 separate chunks: each one written once the proxy has taken the previous one in
    // (it is then in the delay, not yet out), so that pipelining is what lets them overlap.
    for (let i = 0; i < 20; i++) {
      const piece = `<${i}>`;
      expected.push(piece);
      const before = proxied.proxyFront.bytesRead;
      proxied.client.write(piece);
      while (proxied.proxyFront.bytesRead === before) await new Promise((resolve) => setImmediate(resolve));
    }
    proxied.client.end();
    assert.equal((await received).toString(), expected.join(''));
    proxied.upstream.end();
    assert.equal((await proxied.closed).bytes_from_client, expected.join('').length);
  });
  const into = payloads(segments, labels.client, labels.front);
  const out = payloads(segments, labels.back, labels.upstream);
  assert.equal(Buffer.concat(out.map((s) => s.payload)).toString(), expected.join(''), 'order kept');
  // Each chunk is held at least latency - jitter; chunks are delayed side by side, not one
  // after another: the second one went in before the first one came out (a filter that
  // held one chunk at a time would have the proxy stop reading until it is out).
  for (const [i, segment] of out.entries()) assert.ok((segment.time - into[i]!.time) * 1000 >= 49, `chunk ${i} held too little`);
  assert.ok(into[1]!.time < out[0]!.time, 'chunks are not pipelined');
  // The FIN to the upstream follows the last data segment.
  const fin = segments.find((s) => s.src === labels.back && s.dst === labels.upstream && s.flags & 0x01);
  assert.ok(fin && fin.time >= out.at(-1)!.time, 'the FIN came before the data');
});

test('delay bounds the bytes it holds: the sender is slowed down beyond max_held', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'delay', direction: 'to_upstream', latency: '100ms', max_held: '64KiB' }] });
  try {
    const proxied = await harness.open();
    const received = readToEnd(proxied.upstream);
    // 1 MiB through a 64 KiB window with 100 ms latency, instead of ~100 ms without the bound.
    const total = 1024 * 1024;
    proxied.client.end(Buffer.alloc(total, 1));
    assert.equal((await received).length, total);
    proxied.upstream.end();
    const line = await proxied.closed;
    assert.equal(line.bytes_from_client, total);
    // A chunk may overshoot the limit once, so a window is up to 128 KiB: at least 8
    // latencies, on the proxy's own clock (a lower bound: a busy machine only adds to it).
    assert.ok(Number(line.duration_ms) >= 700, `1 MiB through a 64 KiB window took only ${String(line.duration_ms)} ms`);
  } finally {
    await harness.dispose();
  }
});
