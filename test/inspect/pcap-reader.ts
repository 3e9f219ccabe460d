/**
 * A small pcap reader for the capture tests: the classic format with Ethernet frames of
 * IPv4 or IPv6 and TCP, checksums verified, nothing else.
 */
import assert from 'node:assert/strict';

export interface Segment {
  readonly time: number;
  readonly src: string;
  readonly dst: string;
  readonly seq: number;
  readonly ack: number;
  readonly flags: number;
  readonly payload: Buffer;
}

export const FIN = 0x01;
export const SYN = 0x02;
export const ACK = 0x10;

function sum16(buffer: Buffer, sum = 0): number {
  for (let i = 0; i + 1 < buffer.length; i += 2) sum += buffer.readUInt16BE(i);
  if (buffer.length % 2) sum += buffer[buffer.length - 1]! << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return `[${groups.join(':')}]`;
}

export function readPcap(file: Buffer): Segment[] {
  assert.equal(file.readUInt32LE(0), 0xa1b2c3d4, 'pcap magic');
  assert.equal(file.readUInt16LE(4), 2);
  assert.equal(file.readUInt16LE(6), 4);
  assert.equal(file.readUInt32LE(20), 1, 'LINKTYPE_ETHERNET');
  const segments: Segment[] = [];
  for (let at = 24; at < file.length;) {
    const time = file.readUInt32LE(at) + file.readUInt32LE(at + 4) / 1e6;
    const included = file.readUInt32LE(at + 8);
    assert.equal(file.readUInt32LE(at + 12), included, 'whole frames are captured');
    const frame = file.subarray(at + 16, at + 16 + included);
    assert.equal(frame.length, included, 'truncated record');
    at += 16 + included;
    const etherType = frame.readUInt16BE(12);
    const ip = frame.subarray(14);
    let tcp: Buffer;
    let src: Buffer;
    let dst: Buffer;
    if (etherType === 0x0800) {
      assert.equal(ip[0], 0x45);
      assert.equal(ip[9], 6, 'TCP');
      assert.equal(fold(sum16(ip.subarray(0, 20))), 0xffff, 'IPv4 header checksum');
      assert.equal(ip.readUInt16BE(2), ip.length, 'IPv4 total length');
      src = ip.subarray(12, 16);
      dst = ip.subarray(16, 20);
      tcp = ip.subarray(20);
    } else {
      assert.equal(etherType, 0x86dd);
      assert.equal(ip[0]! >> 4, 6);
      assert.equal(ip[6], 6, 'TCP');
      assert.equal(ip.readUInt16BE(4), ip.length - 40, 'IPv6 payload length');
      src = ip.subarray(8, 24);
      dst = ip.subarray(24, 40);
      tcp = ip.subarray(40);
    }
    const pseudo = sum16(src, sum16(dst)) + 6 + tcp.length;
    assert.equal(fold(sum16(tcp, pseudo)), 0xffff, 'TCP checksum');
    const headerLength = (tcp[12]! >> 4) * 4;
    segments.push({
      time,
      src: `${formatIp(src)}:${tcp.readUInt16BE(0)}`,
      dst: `${formatIp(dst)}:${tcp.readUInt16BE(2)}`,
      seq: tcp.readUInt32BE(4),
      ack: tcp.readUInt32BE(8),
      flags: tcp[13]!,
      payload: tcp.subarray(headerLength),
    });
  }
  return segments;
}

/** One direction of a TCP conversation: its SYN, its data in order, its FIN; seq numbers checked. */
export function followStream(segments: readonly Segment[], src: string, dst: string): { isn: number; data: Buffer; finSeq: number | undefined } {
  const mine = segments.filter((segment) => segment.src === src && segment.dst === dst);
  const syn = mine[0];
  assert.ok(syn && syn.flags & SYN, `${src} -> ${dst} starts with a SYN`);
  let next = (syn.seq + 1) >>> 0;
  const chunks: Buffer[] = [];
  let finSeq: number | undefined;
  for (const segment of mine.slice(1)) {
    assert.equal(segment.seq, next, `${src} -> ${dst}: contiguous sequence numbers`);
    assert.ok(segment.payload.length <= 65_000);
    chunks.push(segment.payload);
    next = (next + segment.payload.length) >>> 0;
    if (segment.flags & FIN) {
      finSeq = segment.seq;
      next = (next + 1) >>> 0;
    }
  }
  return { isn: syn.seq, data: Buffer.concat(chunks), finSeq };
}
