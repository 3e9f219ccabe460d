/**
 * The bridges' read buffers (two per connection: one per direction, `buffer_size` each),
 * recycled.
 *
 * A fresh buffer per socket is external memory; at thousands of connections per second that
 * allocation rate alone kept V8 in major GCs (measured: 15% of the proxy's CPU in the
 * connection-rate benchmark). A bridge gives its buffers back when both its sockets are
 * closed (libuv reads into a buffer only while its handle is open), and the next connection
 * takes them. What is kept is bounded (MAX_KEPT_BYTES), so a burst's buffers are not held
 * forever. A recycled buffer holds an earlier connection's bytes, but only the bytes a read
 * just wrote (`length` from the start) are ever passed on.
 */
const MAX_KEPT_BYTES = 16 * 1024 * 1024;

/** Free buffers by size (listeners may configure different sizes). */
const free = new Map<number, Buffer[]>();
let keptBytes = 0;

export function takeReadBuffer(size: number): Buffer {
  const buffer = free.get(size)?.pop();
  if (buffer === undefined) return Buffer.allocUnsafeSlow(size);
  keptBytes -= size;
  return buffer;
}

export function giveBackReadBuffer(buffer: Buffer): void {
  if (keptBytes + buffer.length > MAX_KEPT_BYTES) return;
  keptBytes += buffer.length;
  let list = free.get(buffer.length);
  if (list === undefined) free.set(buffer.length, (list = []));
  list.push(buffer);
}
