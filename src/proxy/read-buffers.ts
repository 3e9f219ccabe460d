/**
 * The bridges' read buffers: one per direction of a connection, recycled.
 *
 * A direction starts small (FIRST_READ_BUFFER_BYTES) and grows x32 each time a read fills
 * its buffer, up to `buffer_size` (512 B, 16 KiB, 256 KiB by default): an idle or chatty
 * connection (a database, Redis, RPC) holds half a kilobyte per direction, a bulk one
 * reaches the full size after two reads. A fresh full-size buffer per connection cost two
 * touched pages (8 KiB) per idle connection, and malloc kept the freed ones' pages after a
 * burst of connections.
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
export const FIRST_READ_BUFFER_BYTES = 512;
const GROWTH = 32;

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

/**
 * One direction's read buffer, growing with the traffic. The owner reports each read
 * (`filled`) and, whenever no write holds the buffer any more, asks `grown()` for the buffer
 * to read into from then on. A replaced buffer may still be referenced by the socket for one
 * more read (net.Socket's onread generator), so it is left to the GC rather than recycled.
 */
export class DirectionBuffer {
  buffer: Buffer;
  private due = false;

  constructor(private readonly maxBytes: number) {
    this.buffer = takeReadBuffer(Math.min(maxBytes, FIRST_READ_BUFFER_BYTES));
  }

  /** A read of `length` bytes went into the buffer: a full one asks for a bigger buffer. */
  filled(length: number): void {
    if (length === this.buffer.length && length < this.maxBytes) this.due = true;
  }

  /** The bigger buffer when one is due (the caller has no write holding the current one); else undefined. */
  grown(): Buffer | undefined {
    if (!this.due) return undefined;
    this.due = false;
    return (this.buffer = takeReadBuffer(Math.min(this.maxBytes, this.buffer.length * GROWTH)));
  }

  giveBack(): void {
    giveBackReadBuffer(this.buffer);
  }
}
