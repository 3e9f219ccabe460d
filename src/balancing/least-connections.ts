import type { Balancer } from './balancer.js';
import { canTake, type Endpoint } from './endpoint.js';
import { IndexedHeap, type HeapNode } from './indexed-heap.js';

interface Slot extends HeapNode {
  readonly endpoint: Endpoint;
  /** Position in the pool's endpoint list: the last tie-breaker. */
  order: number;
  /** Pick sequence number of its last pick: among equally loaded endpoints the one picked
   * longest ago goes first, so ties are broken in turn rather than always by the first. */
  lastPick: number;
}

function before(a: Slot, b: Slot): boolean {
  const loadA = a.endpoint.active * b.endpoint.weight;
  const loadB = b.endpoint.active * a.endpoint.weight;
  if (loadA !== loadB) return loadA < loadB;
  if (a.lastPick !== b.lastPick) return a.lastPick < b.lastPick;
  return a.order < b.order;
}

/**
 * Fewest active connections relative to weight (active / weight, compared exactly by
 * cross-multiplication as nginx does). Healthy endpoints sit in a heap keyed on that load;
 * the pool reports every acquire and release, so a pick is O(log n).
 */
export class LeastConnectionsBalancer implements Balancer {
  private slots = new Map<Endpoint, Slot>();
  private readonly heap = new IndexedHeap<Slot>(before);
  /** Scratch list for full or excluded endpoints set aside during one pick. */
  private readonly setAside: Slot[] = [];
  private picks = 0;

  setEndpoints(endpoints: readonly Endpoint[]): void {
    const slots = new Map<Endpoint, Slot>();
    endpoints.forEach((endpoint, order) => {
      const slot = this.slots.get(endpoint) ?? { endpoint, order, lastPick: 0, heapIndex: -1 };
      slot.order = order;
      slots.set(endpoint, slot);
    });
    this.slots = slots;
    this.heap.clear();
    for (const slot of slots.values()) {
      if (slot.endpoint.state === 'healthy') this.heap.push(slot);
    }
  }

  stateChanged(endpoint: Endpoint): void {
    const slot = this.slots.get(endpoint);
    if (slot === undefined) return;
    const queued = slot.heapIndex >= 0;
    if (endpoint.state === 'healthy' && !queued) this.heap.push(slot);
    else if (endpoint.state !== 'healthy' && queued) this.heap.remove(slot);
  }

  loadChanged(endpoint: Endpoint): void {
    const slot = this.slots.get(endpoint);
    if (slot !== undefined && slot.heapIndex >= 0) this.heap.update(slot);
  }

  pick(_clientIp: string, exclude: ReadonlySet<Endpoint> | undefined): Endpoint | undefined {
    const heap = this.heap;
    let chosen = heap.peek();
    while (chosen !== undefined && !canTake(chosen.endpoint, exclude)) {
      this.setAside.push(heap.pop()!);
      chosen = heap.peek();
    }
    if (chosen !== undefined) {
      chosen.lastPick = ++this.picks;
      heap.update(chosen);
    }
    if (this.setAside.length > 0) {
      for (const slot of this.setAside) heap.push(slot);
      this.setAside.length = 0;
    }
    return chosen?.endpoint;
  }
}
