import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { formatHostPort, parseDottedQuad, parseHostPort, unmapIPv4 } from '../../src/net/address.js';

describe('addresses as text', { timeout: 10_000 }, () => {
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

  it('unmapIPv4 unmaps IPv4-mapped addresses only', () => {
    assert.equal(unmapIPv4('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(unmapIPv4('::FFFF:127.0.0.1'), '127.0.0.1');
    assert.equal(unmapIPv4('127.0.0.1'), '127.0.0.1');
    assert.equal(unmapIPv4('::1'), '::1');
    assert.equal(unmapIPv4('::ffff:1'), '::ffff:1');
    assert.equal(unmapIPv4('2001:db8::1'), '2001:db8::1');
  });

  it('formatHostPort brackets IPv6 only', () => {
    assert.equal(formatHostPort('127.0.0.1', 80), '127.0.0.1:80');
    assert.equal(formatHostPort('db.internal', '5432'), 'db.internal:5432');
    assert.equal(formatHostPort('::1', 9000), '[::1]:9000');
    assert.equal(formatHostPort('::ffff:10.0.0.1', 1), '[::ffff:10.0.0.1]:1');
  });

  it('parseHostPort reads what formatHostPort writes, and says what is wrong otherwise', () => {
    for (const [host, port] of [
      ['10.1.2.3', 80],
      ['::1', 8080],
      ['name.example', 65535],
    ] as const) {
      assert.deepEqual(parseHostPort(formatHostPort(host, port)), { host, port });
    }
    assert.deepEqual(parseHostPort('0.0.0.0:0', { allowPortZero: true }), { host: '0.0.0.0', port: 0 });
    assert.equal(parseHostPort('0.0.0.0:0'), 'port out of range in "0.0.0.0:0"');
    assert.equal(parseHostPort('10.0.0.1'), 'expected HOST:PORT, got "10.0.0.1"');
    assert.equal(parseHostPort('::1:80'), 'IPv6 addresses need brackets ([::1]:PORT), got "::1:80"');
    assert.equal(parseHostPort('[10.0.0.1]:80'), 'expected an IPv6 address inside brackets, got "[10.0.0.1]:80"');
  });
});
