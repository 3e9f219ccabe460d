/**
 * Dumps of a chunk for the data log: the classic `hexdump -C` layout (offset, 16 bytes in
 * two groups of 8, the printable ASCII between bars), or the bytes as escaped text.
 */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

function isPrintable(byte: number): boolean {
  return byte >= 0x20 && byte < 0x7f;
}

/**
 * One line per 16 bytes, e.g.
 * `00000000  48 65 6c 6c 6f 2c 20 77  6f 72 6c 64 21 0a 00 01  |Hello, world!...|`.
 * `offset` is the stream offset of the first byte, so that consecutive chunks continue the count.
 */
export function hexDump(bytes: Buffer, offset = 0): string {
  const lines: string[] = [];
  for (let start = 0; start < bytes.length; start += 16) {
    const end = Math.min(start + 16, bytes.length);
    let hex = '';
    let ascii = '';
    for (let i = start; i < start + 16; i++) {
      if (i === start + 8) hex += ' ';
      if (i < end) {
        const byte = bytes[i]!;
        hex += HEX[byte] + ' ';
        ascii += isPrintable(byte) ? String.fromCharCode(byte) : '.';
      } else {
        hex += '   ';
      }
    }
    lines.push(`${(offset + start).toString(16).padStart(8, '0')}  ${hex} |${ascii}|`);
  }
  return lines.join('\n');
}

const ESCAPES: Readonly<Record<number, string>> = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r', 0x5c: '\\\\' };

/** Printable ASCII as is, `\n` `\r` `\t` `\\`, anything else as `\xNN`: one line, lossless. */
export function textDump(bytes: Buffer): string {
  let out = '';
  for (const byte of bytes) {
    const escape = ESCAPES[byte];
    if (escape !== undefined) out += escape;
    else out += isPrintable(byte) ? String.fromCharCode(byte) : `\\x${HEX[byte]}`;
  }
  return out;
}
