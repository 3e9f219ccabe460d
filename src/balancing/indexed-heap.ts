/** A heap element remembers its position so that it can be re-sifted or removed in O(log n). */
export interface HeapNode {
  /** Position in the heap, -1 when not in it. */
  heapIndex: number;
}

/** A binary min-heap ordered by `before`, with removal and re-ordering of any element. */
export class IndexedHeap<T extends HeapNode> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(node: T): void {
    node.heapIndex = this.items.length;
    this.items.push(node);
    this.siftUp(node.heapIndex);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  remove(node: T): void {
    const index = node.heapIndex;
    const last = this.items.pop()!; // non-empty: node is in the heap
    node.heapIndex = -1;
    if (last === node) return;
    this.items[index] = last;
    last.heapIndex = index;
    this.update(last);
  }

  /** Restores the order after the key of `node` changed (either way). */
  update(node: T): void {
    const index = node.heapIndex;
    if (index > 0 && this.before(node, this.items[(index - 1) >> 1]!)) this.siftUp(index);
    else this.siftDown(index);
  }

  clear(): void {
    for (const node of this.items) node.heapIndex = -1;
    this.items.length = 0;
  }

  private siftUp(index: number): void {
    const items = this.items;
    const node = items[index]!;
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = items[parentIndex]!;
      if (!this.before(node, parent)) break;
      items[index] = parent;
      parent.heapIndex = index;
      index = parentIndex;
    }
    items[index] = node;
    node.heapIndex = index;
  }

  private siftDown(index: number): void {
    const items = this.items;
    const length = items.length;
    const node = items[index]!;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= length) break;
      const right = child + 1;
      if (right < length && this.before(items[right]!, items[child]!)) child = right;
      const smaller = items[child]!;
      if (!this.before(smaller, node)) break;
      items[index] = smaller;
      smaller.heapIndex = index;
      index = child;
    }
    items[index] = node;
    node.heapIndex = index;
  }
}
