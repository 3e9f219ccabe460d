import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { canonicalClientIp, parseClientAddress, parseDottedQuad } from '../../src/admission/client-address.js';

describe('client addresses', { timeout: 10_000 }, () => {
  it('parseDottedQuad agrees with ipaddr.js strict four-part decimal on arbitrary text', () => {
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('', '00', '01', '007', '1a', '-1', ' 1'));
    const text = fc.oneof(
      fc.array(octet, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
      fc.string({ maxLength: 16 }),
    );
    fc.assert(
      fc.property(text, (candidate) => {
        const expected = ipaddr.IPv4.isValidFourPartDecimal(candidate)
          ? ipaddr.IPv4.parse(candidate).octets.reduce((value, byte) => value * 256 + byte, 0)
          : -1;
        assert.equal(parseDottedQuad(candidate, 0), expected, candidate);
      }),
      { numRuns: 5_000, seed: 1 },
    );
  });

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

  it('canonicalClientIp unmaps IPv4-mapped addresses only', () => {
    assert.equal(canonicalClientIp('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalClientIp('::FFFF:127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalClientIp('127.0.0.1'), '127.0.0.1');
    assert.equal(canonicalClientIp('::1'), '::1');
    assert.equal(canonicalClientIp('::ffff:1'), '::ffff:1');
    assert.equal(canonicalClientIp('2001:db8::1'), '2001:db8::1');
  });
});
