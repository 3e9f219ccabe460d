import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hexDump, textDump } from '../../src/inspect/hex-dump.js';

const PAYLOAD = Buffer.concat([Buffer.from('Hello, world!\n'), Buffer.from([0x00, 0x01, 0x02, 0xff])]);

test('hex dump: the hexdump -C layout, 16 bytes a line', () => {
  assert.equal(
    hexDump(PAYLOAD),
    ['00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 01  |Hello, world!...|', '00000010  02 ff                                             |..|'].join(
      '\n',
    ),
  );
});

test('hex dump: offsets continue from the stream offset; a short line is padded', () => {
  assert.equal(hexDump(Buffer.from('abcdefghi'), 0x1f0), '000001f0  61 62 63 64 65 66 67 68  69                       |abcdefghi|');
  assert.equal(hexDump(Buffer.alloc(0)), '');
});

test('text dump: printable ASCII as is, escapes for the rest', () => {
  assert.equal(textDump(PAYLOAD), 'Hello, world!\\n\\x00\\x01\\x02\\xff');
  assert.equal(textDump(Buffer.from('a\\b\r\t')), 'a\\\\b\\r\\t');
});
