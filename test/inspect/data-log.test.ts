import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startFilterProxy } from '../helpers/filter-proxy.js';
import { readBytes, readToEnd } from '../helpers/sockets.js';

test('log_data hex: each chunk with id, direction, offset, length and a dump', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ inspect: { log_data: 'hex' } });
  try {
    const proxied = await harness.open();
    const { client, upstream, id } = proxied;
    client.write('GET / HTTP/1.0\r\n');
    await readBytes(upstream, 16);
    client.write('\r\n');
    await readBytes(upstream, 2);
    const atClient = readToEnd(client);
    upstream.end('HTTP/1.0 200 OK\r\n');
    await atClient;
    const data = harness.lines.filter((line) => line.event === 'data');
    assert.deepEqual(
      data.map(({ id, direction, offset, length }) => ({ id, direction, offset, length })),
      [
        { id, direction: 'to_upstream', offset: 0, length: 16 },
        { id, direction: 'to_upstream', offset: 16, length: 2 },
        { id, direction: 'to_client', offset: 0, length: 17 },
      ],
    );
    assert.equal(data[0]!.dump, '00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 30 0d 0a  |GET / HTTP/1.0..|');
    assert.equal(data[1]!.dump, '00000010  0d 0a                                             |..|');
    client.end();
    const line = await proxied.closed;
    assert.equal(line.id, id, 'the data lines and the access-log line share the connection id');
    assert.deepEqual([line.bytes_from_client, line.bytes_to_client], [18, 17]);
  } finally {
    await harness.dispose();
  }
});

test('log_data text with a per-connection cap: one notice, then silence', { timeout: 10_000 }, async () => {
  const harness = await startFilterProxy({ inspect: { log_data: 'text', log_data_limit: 10 } });
  try {
    const { client, upstream } = await harness.open();
    client.write('0123456');
    await readBytes(upstream, 7);
    client.write('789abc\n');
    await readBytes(upstream, 7);
    client.write('more');
    await readBytes(upstream, 4);
    const data = harness.lines.filter((line) => line.event === 'data');
    assert.equal(data.length, 2);
    assert.equal(data[0]!.dump, '0123456');
    assert.deepEqual([data[1]!.dump, data[1]!.truncated, data[1]!.length], ['789', true, 7]);
    assert.equal(harness.lines.filter((line) => line.event === 'data_log_limit').length, 1);
  } finally {
    await harness.dispose();
  }
});
