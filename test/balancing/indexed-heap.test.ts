import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { IndexedHeap, type HeapNode } from '../../src/balancing/indexed-heap.js';

interface Item extends HeapNode {
  key: number;
}

describe('indexed heap', { timeout: 20_000 }, () => {
  it('behaves like a sorted list under push, pop, remove and key changes', () => {
    const operation = fc.oneof(
      fc.record({ op: fc.constant('push' as const), key: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ op: fc.constant('pop' as const) }),
      fc.record({ op: fc.constant('remove' as const), at: fc.nat() }),
      fc.record({ op: fc.constant('rekey' as const), at: fc.nat(), key: fc.integer({ min: 0, max: 50 }) }),
    );
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 200 }), (operations) => {
        const heap = new IndexedHeap<Item>((a, b) => a.key < b.key);
        const model: Item[] = [];
        for (const step of operations) {
          if (step.op === 'push') {
            const item = { key: step.key, heapIndex: -1 };
            heap.push(item);
            model.push(item);
          } else if (step.op === 'pop') {
            const top = heap.pop();
            const min = model.length === 0 ? undefined : Math.min(...model.map((i) => i.key));
            assert.equal(top?.key, min);
            if (top !== undefined) model.splice(model.indexOf(top), 1);
            if (top !== undefined) assert.equal(top.heapIndex, -1);
          } else if (model.length > 0) {
            const item = model[step.at % model.length]!;
            if (step.op === 'remove') {
              heap.remove(item);
              model.splice(model.indexOf(item), 1);
            } else {
              item.key = step.key;
              heap.update(item);
            }
          }
          assert.equal(heap.size, model.length);
          assert.equal(heap.peek()?.key, model.length === 0 ? undefined : Math.min(...model.map((i) => i.key)));
        }
      }),
      { numRuns: 300 },
    );
  });
});
