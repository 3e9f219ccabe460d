/**
 * Read buffers that grow with the traffic: a direction starts with 512 bytes and moves up x32
 * each time a read fills its buffer, up to buffer_size (read-buffers.ts). End to end, through
 * the bridge: bridge.test.ts ("small messages, a 24 MiB burst, then small messages again").
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DirectionBuffer, FIRST_READ_BUFFER_BYTES } from '../../src/proxy/read-buffers.js';

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
