import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientAddress } from '../../src/admission/client-address.js';

describe('client addresses', { timeout: 10_000 }, () => {
  it('parseClientAddress fills words for IPv4, IPv6 and mapped IPv4', () => {
    const words = new Uint32Array(4);
    assert.equal(parseClientAddress('192.168.0.1', words), 4);
    assert.equal(words[0], 0xc0a80001);
    assert.equal(parseClientAddress('::ffff:192.168.0.2', words), 4);
    assert.equal(words[0], 0xc0a80002);
    assert.equal(parseClientAddress('::ffff:c0a8:3', words), 4);
    assert.equal(words[0], 0xc0a80003);
    assert.equal(parseClientAddress('2001:db8:1:2:3:4:ffff:fffe', words), 6);
    assert.deepEqual([...words], [0x20010db8, 0x00010002, 0x00030004, 0xfffffffe]);
    assert.equal(parseClientAddress('::1', words), 6);
    assert.deepEqual([...words], [0, 0, 0, 1]);
    assert.equal(parseClientAddress('localhost', words), undefined);
    assert.equal(parseClientAddress('1::2::3', words), undefined);
  });
});
