import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crc32c } from '../../src/protocol/crc32c.js';
import {
  encodeV1,
  encodeV2,
  ProxyHeaderParser,
  ProxyProtocolError,
  type ProxyAccept,
  type ProxyAddresses,
  type ProxyPushResult,
} from '../../src/protocol/proxy-protocol.js';

const V2_SIGNATURE = '0d0a0d0a000d0a515549540a';
const TIMEOUT = { timeout: 5_000 };

function tcp4(src: string, sport: number, dst: string, dport: number): ProxyAddresses {
  return { family: 'tcp4', source: { address: src, port: sport }, destination: { address: dst, port: dport } };
}
function tcp6(src: string, sport: number, dst: string, dport: number): ProxyAddresses {
  return { family: 'tcp6', source: { address: src, port: sport }, destination: { address: dst, port: dport } };
}

function parseAll(input: Buffer | string, accept: ProxyAccept = 'any', maxV2Length?: number): ProxyPushResult {
  const parser = new ProxyHeaderParser(accept, maxV2Length === undefined ? {} : { maxV2Length });
  return parser.push(typeof input === 'string' ? Buffer.from(input, 'latin1') : input);
}

function parsed(input: Buffer | string, accept: ProxyAccept = 'any') {
  const result = parseAll(input, accept);
  assert.equal(result.done, true, 'header should be complete');
  return result;
}

function rejects(input: Buffer | string, message: RegExp, accept: ProxyAccept = 'any', maxV2Length?: number): void {
  assert.throws(
    () => parseAll(input, accept, maxV2Length),
    (err: unknown) => {
      assert.ok(err instanceof ProxyProtocolError, `expected ProxyProtocolError, got ${String(err)}`);
      assert.match(err.message, message);
      return true;
    },
  );
}

/** A v2 header built by hand, so the tests do not only check the encoder against itself. */
function v2(verCmd: number, family: number, payload: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(payload.length);
  return Buffer.concat([Buffer.from(V2_SIGNATURE, 'hex'), Buffer.from([verCmd, family]), length, payload]);
}

describe('PROXY protocol v1 encoding', TIMEOUT, () => {
  test('TCP4 line', () => {
    assert.equal(encodeV1(tcp4('192.168.0.1', 56324, '192.168.0.11', 443)).toString('latin1'), 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n');
  });
  test('TCP6 line uses compressed lower-case hex', () => {
    assert.equal(encodeV1(tcp6('2001:DB8:0:0:0:0:0:1', 1, '::1', 65535)).toString('latin1'), 'PROXY TCP6 2001:db8::1 ::1 1 65535\r\n');
  });
  test('UNKNOWN without addresses', () => {
    assert.equal(encodeV1(undefined).toString('latin1'), 'PROXY UNKNOWN\r\n');
  });
  test('IPv4-mapped IPv6 on both ends becomes TCP4', () => {
    assert.equal(encodeV1(tcp6('::ffff:10.0.0.1', 1000, '::ffff:10.0.0.2', 80)).toString('latin1'), 'PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n');
  });
  test('mixed families become TCP6 with the IPv4 end mapped', () => {
    assert.equal(encodeV1(tcp4('10.0.0.1', 1000, '2001:db8::2', 80)).toString('latin1'), 'PROXY TCP6 ::ffff:a00:1 2001:db8::2 1000 80\r\n');
  });
  test('invalid addresses and ports are programming errors (TypeError)', () => {
    assert.throws(() => encodeV1(tcp4('10.0.0.256', 1, '10.0.0.1', 2)), TypeError);
    assert.throws(() => encodeV1(tcp4('example.com', 1, '10.0.0.1', 2)), TypeError);
    assert.throws(() => encodeV1(tcp4('10.0.0.1', 65536, '10.0.0.1', 2)), TypeError);
    assert.throws(() => encodeV2(tcp4('10.0.0.1', 1, '10.0.0.1', -1)), TypeError);
  });
});

describe('PROXY protocol v2 encoding', TIMEOUT, () => {
  test('TCP4 bytes', () => {
    const header = encodeV2(tcp4('192.168.0.1', 56324, '192.168.0.11', 443));
    assert.equal(header.toString('hex'), `${V2_SIGNATURE}2111000c` + 'c0a80001' + 'c0a8000b' + 'dc04' + '01bb');
  });
  test('TCP6 bytes', () => {
    const header = encodeV2(tcp6('2001:db8::1', 1, '::1', 2));
    assert.equal(header.toString('hex'), `${V2_SIGNATURE}21210024` + '20010db8000000000000000000000001' + '00000000000000000000000000000001' + '0001' + '0002');
  });
  test('LOCAL for health checks', () => {
    assert.equal(encodeV2(undefined).toString('hex'), `${V2_SIGNATURE}20000000`);
  });
  test('IPv4-mapped IPv6 becomes TCP over IPv4', () => {
    assert.equal(
      encodeV2(tcp6('::ffff:127.0.0.1', 5, '::ffff:127.0.0.2', 6))
        .subarray(12, 16)
        .toString('hex'),
      '2111000c',
    );
  });
  test('TLVs are appended after the addresses', () => {
    const header = encodeV2(tcp4('1.2.3.4', 1, '5.6.7.8', 2), [{ type: 0x02, value: Buffer.from('example.com') }]);
    assert.equal(header.readUInt16BE(14), 12 + 3 + 11);
    assert.equal(header.subarray(28).toString('hex'), `02000b${Buffer.from('example.com').toString('hex')}`);
  });
});

describe('PROXY protocol parsing', TIMEOUT, () => {
  const cases: [string, ProxyAddresses][] = [
    ['TCP4', tcp4('192.168.0.1', 56324, '192.168.0.11', 443)],
    ['TCP6', tcp6('2001:db8::1', 0, 'fe80::abcd', 65535)],
  ];
  for (const [name, addresses] of cases) {
    for (const [version, encode] of [
      [1, encodeV1],
      [2, encodeV2],
    ] as const) {
      test(`v${version} ${name} round trip keeps the bytes after the header`, () => {
        const result = parsed(Buffer.concat([encode(addresses), Buffer.from('GET / HTTP/1.1\r\n')]));
        assert.deepEqual(result.header, { version, command: 'proxy', addresses });
        assert.equal(result.rest.toString(), 'GET / HTTP/1.1\r\n');
      });
    }
  }

  test('v1 UNKNOWN (short and long form) means: use the real endpoints', () => {
    assert.deepEqual(parsed('PROXY UNKNOWN\r\n').header, { version: 1, command: 'local' });
    const long = parsed('PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\nx');
    assert.deepEqual(long.header, { version: 1, command: 'local' });
    assert.equal(long.rest.toString(), 'x');
  });

  test('v2 LOCAL is accepted, its block skipped whatever it holds', () => {
    assert.deepEqual(parsed(encodeV2(undefined)).header, { version: 2, command: 'local' });
    const withBlock = parsed(Buffer.concat([v2(0x20, 0xff, Buffer.alloc(40, 7)), Buffer.from('data')]));
    assert.deepEqual(withBlock.header, { version: 2, command: 'local' });
    assert.equal(withBlock.rest.toString(), 'data');
  });

  test('v1 TCP6 addresses come back in Node form (IPv4-mapped dotted)', () => {
    const result = parsed('PROXY TCP6 0:0:0:0:0:FFFF:0A00:0001 2001:DB8::1 1 2\r\n');
    assert.equal(result.header.addresses?.source.address, '::ffff:10.0.0.1');
    assert.equal(result.header.addresses?.destination.address, '2001:db8::1');
  });

  test('v2 TLVs are returned and skipped, including an empty one at the end', () => {
    const tlvs = [
      { type: 0x01, value: Buffer.from('h2') },
      { type: 0xea, value: Buffer.from('vpce-0123456789') },
      { type: 0x04, value: Buffer.alloc(0) },
    ];
    const result = parsed(Buffer.concat([encodeV2(tcp4('10.1.2.3', 4000, '10.0.0.1', 443), tlvs), Buffer.from('tail')]));
    assert.deepEqual(result.header.tlvs, tlvs);
    assert.equal(result.rest.toString(), 'tail');
  });

  test('v2 CRC32C TLV is verified', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283); // the standard check value
    const header = encodeV2(tcp4('10.1.2.3', 4000, '10.0.0.1', 443), [{ type: 0x03, value: Buffer.alloc(4) }]);
    header.writeUInt32BE(crc32c(header), header.length - 4);
    assert.equal(parsed(header).header.tlvs?.[0]?.type, 0x03);
    header[16]! ^= 1; // the address changes, the checksum no longer matches
    rejects(header, /CRC32C checksum mismatch/);
  });

  test('v2 UDP, UNIX and UNSPEC with PROXY: accepted without addresses', () => {
    assert.deepEqual(parsed(v2(0x21, 0x12, Buffer.alloc(12))).header, { version: 2, command: 'proxy' });
    assert.deepEqual(parsed(v2(0x21, 0x31, Buffer.alloc(216))).header, { version: 2, command: 'proxy' });
    assert.deepEqual(parsed(v2(0x21, 0x00, Buffer.alloc(0))).header, { version: 2, command: 'proxy' });
  });

  test('accept restricts the version', () => {
    assert.equal(parsed(encodeV1(undefined), 'v1').header.version, 1);
    assert.equal(parsed(encodeV2(undefined), 'v2').header.version, 2);
    rejects(encodeV2(undefined), /missing PROXY protocol v1 header/, 'v1');
    rejects(encodeV1(undefined), /missing PROXY protocol v2 header/, 'v2');
    rejects('GET / HTTP/1.1\r\n', /missing PROXY protocol header/, 'any');
  });

  test('needs more bytes until the header is complete, then reports the rest', () => {
    const bytes = Buffer.concat([encodeV2(tcp6('::1', 1, '::2', 2)), Buffer.from('abc')]);
    const parser = new ProxyHeaderParser('any');
    for (let i = 0; i < bytes.length - 4; i++) assert.deepEqual(parser.push(bytes.subarray(i, i + 1)), { done: false });
    const result = parser.push(bytes.subarray(bytes.length - 4));
    assert.equal(result.done, true);
    assert.equal(result.done && result.rest.toString('latin1'), 'abc');
    assert.throws(() => parser.push(Buffer.from('x')), /after the header was complete/);
  });

  test('malformed v1 lines are rejected', () => {
    const bad: [string, RegExp][] = [
      ['PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n', /unsupported PROXY protocol v1 protocol ""/],
      ['PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n', /unsupported/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n', /4 single-space separated fields/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n', /4 single-space separated fields/],
      ['PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n', /4 single-space separated fields/],
      ['PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n', /invalid PROXY protocol v1 source address "1.2.3.04"/],
      ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', /source address/],
      ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', /source address/],
      ['PROXY TCP6 ::1 fe80::1%eth0 1 2\r\n', /destination address/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n', /source port "01"/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n', /destination port "65536"/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n', /destination port/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', /invalid byte 0x0a/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX', /CR without LF/],
      ['PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n', /invalid byte 0x09/],
      ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\u00e9\r\n', /invalid byte 0xe9/],
      ['PROXZ TCP4', /invalid PROXY protocol v1 signature/],
      ['PROXYTCP4', /invalid PROXY protocol v1 signature/],
    ];
    for (const [line, message] of bad) rejects(line, message);
  });

  test('v1 longer than 107 bytes is rejected without waiting for more', () => {
    const longest = `PROXY UNKNOWN ${'f'.repeat(39)} ${'f'.repeat(39)} 65535 65535\r\n`;
    assert.equal(longest.length, 107);
    assert.equal(parsed(longest).header.command, 'local');
    const tooLong = `PROXY UNKNOWN ${'f'.repeat(40)} ${'f'.repeat(39)} 65535 65535\r\n`;
    rejects(tooLong, /longer than 107 bytes/);
    rejects(tooLong.slice(0, 107), /longer than 107 bytes/); // CR at byte 107: the line cannot fit
    rejects('PROXY ' + 'A'.repeat(101), /longer than 107 bytes/); // 107 bytes, no CR yet
    assert.deepEqual(parseAll('PROXY ' + 'A'.repeat(100)), { done: false }); // 106 bytes: may still end in CRLF
  });

  test('malformed v2 headers are rejected', () => {
    const addresses4 = Buffer.alloc(12);
    rejects(Buffer.from('0d0a0d0a000d0a515549540b', 'hex'), /invalid PROXY protocol v2 signature/);
    rejects(v2(0x11, 0x11, addresses4), /unsupported PROXY protocol version 1/);
    rejects(v2(0x31, 0x11, addresses4), /unsupported PROXY protocol version 3/);
    rejects(v2(0x22, 0x11, addresses4), /unknown PROXY protocol v2 command 2/);
    rejects(v2(0x21, 0x13, addresses4), /family\/transport byte 0x13/);
    rejects(v2(0x21, 0x41, addresses4), /family\/transport byte 0x41/);
    rejects(v2(0x21, 0x11, Buffer.alloc(11)), /too short for its address block/);
    rejects(v2(0x21, 0x21, Buffer.alloc(35)), /too short for its address block/);
    rejects(v2(0x21, 0x11, Buffer.concat([addresses4, Buffer.from([0x01, 0x00])])), /truncated TLV header/);
    rejects(v2(0x21, 0x11, Buffer.concat([addresses4, Buffer.from([0x01, 0x00, 0x05, 0x41])])), /TLV 0x1 overruns/);
    rejects(v2(0x21, 0x11, Buffer.concat([addresses4, Buffer.from([0x03, 0x00, 0x02, 0, 0])])), /CRC32C TLV must be 4 bytes/);
  });

  test('v2 over the length limit is rejected from its preamble alone', () => {
    const preamble = v2(0x21, 0x11, Buffer.alloc(2048 - 16 + 1)).subarray(0, 16);
    rejects(preamble, /header of 2049 bytes exceeds the 2048-byte limit/);
    const noop = Buffer.alloc(2048 - 16); // one NOOP TLV filling the payload
    noop[0] = 0x04;
    noop.writeUInt16BE(noop.length - 3, 1);
    const atLimit = parsed(v2(0x21, 0x00, noop));
    assert.equal(atLimit.header.tlvs?.[0]?.value.length, 2048 - 16 - 3);
    assert.equal(atLimit.rest.length, 0);
    rejects(encodeV2(tcp6('::1', 1, '::2', 2)), /exceeds the 40-byte limit/, 'any', 40);
    assert.throws(() => new ProxyHeaderParser('any', { maxV2Length: 15 }), RangeError);
  });
});
