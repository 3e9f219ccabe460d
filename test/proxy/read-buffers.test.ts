/**
 * Read buffers that grow with the traffic: a direction starts with 512 bytes and moves up x32
 * each time a read fills its buffer, up to buffer_size (read-buffers.ts). Checked on the
 * buffer itself, and end to end: small messages, then a burst far larger than any buffer
 * (the growth happens while writes are pending), then small messages again, both ways.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DirectionBuffer, FIRST_READ_BUFFER_BYTES } from '../../src/proxy/read-buffers.js';
import { startEchoServer, type TestServer } from '../helpers/servers.js';
import { oneListener, startProxy, type TestProxy } from '../helpers/proxy.js';
import { connect, readBytes, sha256 } from '../helpers/sockets.js';

describe('read buffers: a direction grows with its reads', () => {
  it('starts at 512 bytes and grows x32 only after a read filled the buffer, up to the maximum', () => {
    const reads = new DirectionBuffer(256 * 1024);
    assert.equal(reads.buffer.length, FIRST_READ_BUFFER_BYTES);
    reads.filled(100);
    assert.equal(reads.grown(), undefined, 'a partial read keeps the buffer');
    reads.filled(512);
    assert.equal(reads.grown()?.length, 16 * 1024);
    assert.equal(reads.grown(), undefined, 'one growth per full read');
    reads.filled(16 * 1024);
    assert.equal(reads.grown()?.length, 256 * 1024);
    reads.filled(256 * 1024);
    assert.equal(reads.grown(), undefined, 'never above buffer_size');
    assert.equal(reads.buffer.length, 256 * 1024);
    reads.giveBack();
  });

  it('starts at buffer_size when that is smaller, and caps the growth at a size that is not a step', () => {
    assert.equal(new DirectionBuffer(256).buffer.length, 256);
    const reads = new DirectionBuffer(4096);
    reads.filled(512);
    assert.equal(reads.grown()?.length, 4096);
  });
});

describe('read buffers: end to end', { timeout: 60_000 }, () => {
  let echo: TestServer;
  let proxy: TestProxy;
  before(async () => {
    echo = await startEchoServer();
    proxy = await startProxy(oneListener([echo.address]));
  });
  after(async () => {
    await proxy.stop();
    await echo.close();
  });

  it('carries small messages, a 24 MiB burst, then small messages again, unchanged both ways', async () => {
    const client = await connect(proxy.port);
    const exchange = async (payload: Buffer): Promise<void> => {
      const back = readBytes(client, payload.length);
      client.write(payload);
      assert.equal(sha256(await back), sha256(payload));
    };
    for (let i = 0; i < 20; i++) await exchange(randomBytes(1 + i * 37));
    await exchange(randomBytes(24 * 1024 * 1024));
    for (let i = 0; i < 20; i++) await exchange(randomBytes(1 + i * 37));
    client.end();
    const line = await proxy.waitForLog((l) => l.event === 'close');
    const small = Array.from({ length: 20 }, (_, i) => 1 + i * 37).reduce((a, b) => a + b, 0) * 2;
    assert.equal(line.bytes_from_client, small + 24 * 1024 * 1024);
    assert.equal(line.bytes_to_client, small + 24 * 1024 * 1024);
  });
});
