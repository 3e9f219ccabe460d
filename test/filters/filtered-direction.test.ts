import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFilterProxy } from '../helpers/filter-proxy.js';
import { readBytes, readToEnd } from '../helpers/sockets.js';
import { until } from '../helpers/wait.js';

test('half-close: one direction ends, the other keeps flowing', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'replace', match: 'a', with: 'b' }] });
  try {
    const proxied = await harness.open();
    const { client, upstream } = proxied;
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
    const line = await proxied.closed;
    assert.equal(line.reason, 'client_closed', "the first FIN was the client's");
    assert.deepEqual([line.bytes_from_client, line.bytes_to_client], [3, 7]);
  } finally {
    await harness.dispose();
  }
});

test('a slow reader slows the sender: the proxy does not buffer without bound', { timeout: 20_000 }, async () => {
  const harness = await startFilterProxy({ inspect: { log_data: 'hex', log_data_limit: 0 }, filters: [{ type: 'slice', size: 65536 }] });
  try {
    const { client, upstream, proxyFront, proxyBack } = await harness.open();
    upstream.pause(); // never reads until told
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    // Write, honouring backpressure, until the proxy's own write to the upstream is pending
    // (the kernel buffers on the way are full) while the client is blocked too: from then
    // on, only the proxy could hold more, and it must stop reading instead.
    const proxyStopped = (): boolean => proxyBack.writableLength > 0 && !proxyFront.readableFlowing;
    for (;;) {
      written += chunk.length;
      if (client.write(chunk)) continue;
      let drained = false;
      client.once('drain', () => (drained = true));
      // Either the client may write again, or the proxy has stopped reading it for good.
      await until(() => drained || proxyStopped(), 'a drain, or the proxy to stop reading', 30_000);
      if (!drained) break;
      assert.ok(written < 256 * 1024 * 1024, 'the proxy never stopped reading');
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
