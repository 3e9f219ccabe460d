import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchmarkPick } from '../../src/balancing/bench-pick.js';
import type { BalanceStrategy } from '../../src/balancing/balancer.js';

/** The best of three runs: the least disturbed by whatever else the machine is doing. */
function best(strategy: BalanceStrategy, endpoints: number): number {
  return Math.min(...[0, 1, 2].map(() => benchmarkPick(strategy, endpoints, 30_000)));
}

describe('benchmarkPick', { timeout: 30_000 }, () => {
  it('stays cheap with 1,000 endpoints: no strategy scans them all per pick', () => {
    for (const strategy of ['round_robin', 'least_connections', 'random', 'source_hash'] as const) {
      const few = best(strategy, 10);
      const many = best(strategy, 1000);
      assert.ok(Number.isFinite(many) && many > 0, `${strategy}: ${many}`);
      // Measured ~100-250 ns and 1-2.5x the cost with 10 endpoints; a per-pick scan would be ~50x.
      assert.ok(many < 10 * few, `${strategy}: ${many.toFixed(0)} ns with 1000 vs ${few.toFixed(0)} ns with 10`);
      assert.ok(many < 5_000, `${strategy}: ${many.toFixed(0)} ns per pick`);
    }
  });
});
