import type { Balancer } from './balancer.js';
import { canTake, type Endpoint } from './endpoint.js';
import { IndexedHeap, type HeapNode } from './indexed-heap.js';

/** An endpoint's place in the rotation. */
interface Turn extends HeapNode {
  readonly endpoint: Endpoint;
  /** Position in the pool's endpoint list: breaks ties so that equal turns go in config order. */
  order: number;
  /** The weight `taken` was counted with. */
  weight: number;
  /** Virtual time at which the endpoint (re)joined the rotation. */
  base: number;
  /** Turns taken (or missed) since `base`. */
  taken: number;
  /** Virtual time of the next turn: base + (taken + 1/2) / weight. */
  due: number;
}

// Virtual time only grows; past this it is shifted back so that turns of heavy and light
// endpoints still compare exactly (doubles lose the fractions a weight of 1000 needs at ~2^40).
const REBASE_AFTER = 2 ** 24;

/**
 * Smooth weighted round robin in O(log n) per pick. Like nginx's algorithm it gives each
 * endpoint exactly `weight` of every `sum(weights)` picks, interleaved rather than in bursts
 * (weights 1:3 give B A B B, or an equivalent interleaving, in every 4 picks); nginx's loop
 * is O(n) per pick, so the same schedule is kept as deadlines in a heap instead:
 * endpoint i has its k-th turn at virtual time (k + 1/2) / weight_i, and a pick takes the
 * earliest turn. Those times are never integers, so every window of sum(weights) picks
 * holds exactly `weight` turns of each. An endpoint that is full or excluded when its turn
 * comes loses that turn (as nginx skips it); one that comes back from down starts fresh at
 * the current virtual time instead of claiming the turns it missed.
 */
export class RoundRobinBalancer implements Balancer {
  private turns = new Map<Endpoint, Turn>();
  private readonly heap = new IndexedHeap<Turn>((a, b) => a.due < b.due || (a.due === b.due && a.order < b.order));
  /** Scratch list for turns passed over during one pick (reused: no allocation per pick). */
  private readonly passedOver: Turn[] = [];
  private now = 0;

  setEndpoints(endpoints: readonly Endpoint[]): void {
    const turns = new Map<Endpoint, Turn>();
    let reweighted = false;
    endpoints.forEach((endpoint, order) => {
      const turn = this.turns.get(endpoint) ?? { endpoint, order, weight: endpoint.weight, base: 0, taken: 0, due: -1, heapIndex: -1 };
      turn.order = order;
      reweighted ||= turn.weight !== endpoint.weight;
      turns.set(endpoint, turn);
    });
    this.turns = turns;
    // A weight changed (reload, admin API): turns counted with the old weight would put that
    // endpoint far ahead or behind (a burst of picks). Every turn restarts now instead, so
    // each window of sum(weights) picks from here on holds exactly the new shares.
    if (reweighted) {
      for (const turn of turns.values()) {
        turn.weight = turn.endpoint.weight;
        turn.due = -1;
      }
    }
    this.heap.clear();
    for (const turn of turns.values()) {
      if (turn.endpoint.state === 'healthy') this.enqueue(turn);
    }
  }

  stateChanged(endpoint: Endpoint): void {
    const turn = this.turns.get(endpoint);
    if (turn === undefined) return;
    const queued = turn.heapIndex >= 0;
    if (endpoint.state === 'healthy' && !queued) this.enqueue(turn);
    else if (endpoint.state !== 'healthy' && queued) this.heap.remove(turn);
  }

  loadChanged(_endpoint: Endpoint): void {
    // Round robin ignores load; max_connections is checked at pick time.
  }

  pick(_clientIp: string, exclude: ReadonlySet<Endpoint> | undefined): Endpoint | undefined {
    const heap = this.heap;
    let chosen = heap.peek();
    while (chosen !== undefined && !canTake(chosen.endpoint, exclude)) {
      this.passedOver.push(heap.pop()!);
      chosen = heap.peek();
    }
    if (chosen !== undefined) {
      this.now = chosen.due;
      advance(chosen);
      heap.update(chosen);
    }
    if (this.passedOver.length > 0) {
      for (const turn of this.passedOver) {
        advance(turn);
        heap.push(turn);
      }
      this.passedOver.length = 0;
    }
    if (this.now > REBASE_AFTER) this.rebase();
    return chosen?.endpoint;
  }

  /**
   * Puts a turn in the rotation; one whose next turn is already due (past, or exactly now,
   * as after a failed pick and an ejection) restarts half a turn after `now`: otherwise it
   * would be picked now and again at its next turn, two in a row.
   */
  private enqueue(turn: Turn): void {
    if (turn.due <= this.now) {
      turn.base = this.now;
      turn.taken = 0;
      turn.due = this.now + 0.5 / turn.endpoint.weight;
    }
    this.heap.push(turn);
  }

  private rebase(): void {
    const shift = Math.floor(this.now);
    this.now -= shift;
    // A uniform shift keeps the heap order; turns outside the heap restart on return anyway.
    for (const turn of this.turns.values()) {
      turn.base -= shift;
      turn.due -= shift;
    }
  }
}

function advance(turn: Turn): void {
  turn.taken++;
  // Recomputed rather than accumulated, so rounding errors do not pile up.
  turn.due = turn.base + (turn.taken + 0.5) / turn.endpoint.weight;
}
