import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { readBytes, readToEnd, startHarness } from './harness.js';

test('half-close: one direction ends, the other keeps flowing', { timeout: 10_000 }, async () => {
  const harness = await startHarness({ filters: [{ type: 'replace', match: 'a', with: 'b' }] });
  try {
    const { client, upstream } = await harness.open();
    const atUpstream = readToEnd(upstream);
    client.end('aaa');
    assert.equal((await atUpstream).toString(), 'bbb', 'the upstream saw the end of the client stream');
    // The client can still receive after it ended its side.
    const reply = readBytes(client, 4);
    upstream.write('a re');
    assert.equal((await reply).toString(), 'b re');
    const rest = readToEnd(client);
    upstream.end('ply');
    assert.equal((await rest).toString(), 'ply');
  } finally {
    await harness.dispose();
  }
});

test('a slow reader slows the sender: the proxy does not buffer without bound', { timeout: 20_000 }, async () => {
  const harness = await startHarness({ inspect: { log_data: 'hex', log_data_limit: 0 }, filters: [{ type: 'slice', size: 65536 }] });
  try {
    const { client, upstream, proxyFront, proxyBack } = await harness.open();
    upstream.pause(); // never reads until told
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    // Write until the client stays blocked for 300 ms: the kernel buffers on the way fill
    // up (a few MiB each), then the proxy must stop reading instead of buffering.
    for (;;) {
      written += chunk.length;
      if (client.write(chunk)) continue;
      const drained = await Promise.race([once(client, 'drain').then(() => true), new Promise((resolve) => setTimeout(resolve, 300, false))]);
      if (!drained) break;
      assert.ok(written < 256 * 1024 * 1024, 'the client was never blocked');
    }
    const buffered = proxyFront.readableLength + proxyBack.writableLength;
    assert.ok(buffered < 4 * 1024 * 1024, `the proxy holds ${buffered} bytes`);
    // Reading resumes the flow, and everything arrives.
    const received = readBytes(upstream, written);
    upstream.resume();
    assert.equal((await received).length, written);
  } finally {
    await harness.dispose();
  }
});
