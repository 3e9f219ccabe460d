/**
 * The bridges' read buffers (two per connection: one per direction), recycled.
 *
 * A fresh 64 KiB buffer per socket is external memory; at thousands of connections per
 * second that allocation rate alone kept V8 in major GCs (measured: 15% of the proxy's CPU
 * in the connection-rate benchmark). A bridge gives its buffers back when both its sockets
 * are closed (libuv reads into a buffer only while its handle is open), and the next
 * connection takes them. The free list is bounded, so a burst's buffers are not kept
 * forever. A recycled buffer holds an earlier connection's bytes, but only the bytes a read
 * just wrote (`length` from the start) are ever passed on.
 */
const SIZE = 64 * 1024;
/** 256 x 64 KiB = 16 MiB kept at most. */
const MAX_FREE = 256;

const free: Buffer[] = [];

export function takeReadBuffer(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(SIZE);
}

export function giveBackReadBuffer(buffer: Buffer): void {
  if (free.length < MAX_FREE) free.push(buffer);
}
