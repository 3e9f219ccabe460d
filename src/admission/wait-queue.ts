/**
 * The `on_limit: queue` waiting line: FIFO, bounded, each entry with its own deadline.
 *
 * A doubly linked list, so a waiter that leaves (client gone) or is served out of
 * order (removeFirst) is unlinked in O(1). Each entry's timer is created with the entry
 * as its argument, not with a closure, and is unref'ed: a waiting client's socket keeps
 * the process alive, its timer need not.
 */
export interface WaitQueueOptions {
  /** most entries at once (`max_queue`); 0 refuses every enqueue */
  maxSize: number;
}

export interface Ticket {
  /** Leaves the queue without the timeout firing; false when no longer queued. */
  cancel(): boolean;
}

/** setTimeout's ceiling: a longer delay would fire after 1 ms. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

class Entry<T> implements Ticket {
  previous: Entry<T> | undefined;
  next: Entry<T> | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The list holding the entry; undefined once it has left. */
  list: EntryList<T> | undefined;

  constructor(
    readonly item: T,
    readonly onTimeout: (item: T) => void,
  ) {}

  cancel(): boolean {
    if (this.list === undefined) return false;
    this.list.remove(this);
    return true;
  }
}

class EntryList<T> {
  head: Entry<T> | undefined;
  tail: Entry<T> | undefined;
  length = 0;

  push(entry: Entry<T>): void {
    entry.list = this;
    entry.previous = this.tail;
    if (this.tail === undefined) this.head = entry;
    else this.tail.next = entry;
    this.tail = entry;
    this.length++;
  }

  /** Unlinks the entry and stops its timer. */
  remove(entry: Entry<T>): void {
    clearTimeout(entry.timer);
    if (entry.previous === undefined) this.head = entry.next;
    else entry.previous.next = entry.next;
    if (entry.next === undefined) this.tail = entry.previous;
    else entry.next.previous = entry.previous;
    entry.previous = entry.next = entry.timer = entry.list = undefined;
    this.length--;
  }
}

function expire<T>(entry: Entry<T>): void {
  if (entry.list === undefined) return;
  entry.list.remove(entry);
  entry.onTimeout(entry.item);
}

export class WaitQueue<T> {
  #maxSize = 0;
  readonly #entries = new EntryList<T>();

  constructor(options: WaitQueueOptions) {
    this.maxSize = options.maxSize;
  }

  /** Most entries at once; lowering it refuses new ones until the queue is below it (none are dropped). */
  set maxSize(maxSize: number) {
    if (!Number.isInteger(maxSize) || maxSize < 0) throw new RangeError(`maxSize must be an integer >= 0, got ${maxSize}`);
    this.#maxSize = maxSize;
  }

  /**
   * Adds `item` at the back. After `timeoutMs` still queued, it is removed and
   * `onTimeout(item)` runs. Returns undefined, and queues nothing, when full.
   */
  enqueue(item: T, timeoutMs: number, onTimeout: (item: T) => void): Ticket | undefined {
    if (!(timeoutMs >= 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new RangeError(`timeoutMs must be from 0 to ${MAX_TIMEOUT_MS}, got ${timeoutMs}`);
    }
    if (this.full) return undefined;
    const entry = new Entry(item, onTimeout);
    this.#entries.push(entry);
    entry.timer = setTimeout(expire<T>, timeoutMs, entry).unref();
    return entry;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** True when enqueue would refuse. */
  get full(): boolean {
    return this.#entries.length >= this.#maxSize;
  }

  peek(): T | undefined {
    return this.#entries.head?.item;
  }

  /** Removes and returns the front item (its timeout no longer fires). */
  shift(): T | undefined {
    const head = this.#entries.head;
    if (head === undefined) return undefined;
    this.#entries.remove(head);
    return head.item;
  }

  /** Removes and returns the first item, in queue order, for which `matches` is true. */
  removeFirst(matches: (item: T) => boolean): T | undefined {
    for (let entry = this.#entries.head; entry !== undefined; entry = entry.next) {
      if (matches(entry.item)) {
        this.#entries.remove(entry);
        return entry.item;
      }
    }
    return undefined;
  }
}
