import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exchange, startFilterProxy } from '../helpers/filter-proxy.js';
import { closeOutcome, readUntilClosed } from '../helpers/sockets.js';

test('drop_connection_probability 1: every connection is reset before a byte passes', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'drop_connection_probability', probability: 1 }] });
  try {
    for (let i = 0; i < 3; i++) {
      const proxied = await harness.open();
      const atUpstream = readUntilClosed(proxied.upstream);
      const outcome = closeOutcome(proxied.client);
      proxied.client.write('hello');
      const line = await proxied.closed;
      assert.equal(line.reason, 'filter');
      assert.equal(line.bytes_to_client, 0);
      assert.equal(await outcome, 'ECONNRESET');
      assert.equal((await atUpstream).length, 0);
    }
  } finally {
    await harness.dispose();
  }
});

test('drop_connection_probability 0: connections pass untouched, both directions', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'drop_connection_probability', probability: 0 }] });
  try {
    const proxied = await harness.open();
    const { atUpstream, atClient } = await exchange(proxied, 'up', 'down');
    assert.equal(atUpstream, 'up');
    assert.equal(atClient, 'down');
    const line = await proxied.closed;
    assert.notEqual(line.reason, 'filter');
    assert.deepEqual([line.bytes_from_client, line.bytes_to_client], [2, 4]);
  } finally {
    await harness.dispose();
  }
});

test('drop_connection_probability 0.5 drops about half of the connections', { timeout: 20_000 }, async () => {
  const harness = await startFilterProxy({ filters: [{ type: 'drop_connection_probability', probability: 0.5 }] });
  try {
    let dropped = 0;
    const total = 60;
    for (let i = 0; i < total; i++) {
      // Each connection ends one way or the other; its access-log line says which.
      const proxied = await harness.open();
      proxied.client.on('data', () => undefined);
      proxied.upstream.on('data', () => undefined);
      proxied.client.end('x');
      proxied.upstream.end();
      const { reason } = await proxied.closed;
      assert.match(String(reason), /^(filter|client_closed|upstream_closed)$/);
      if (reason === 'filter') dropped++;
    }
    // Binomial(60, 0.5): outside 15..45 has a probability below 1e-4.
    assert.ok(dropped >= 15 && dropped <= 45, `${dropped} of ${total} dropped`);
  } finally {
    await harness.dispose();
  }
});
