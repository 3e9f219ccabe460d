/**
 * Settings shared by the fuzzers (fast-check). In CI each runs a fixed number of cases from
 * a fixed seed, so that a failure reproduces; `FUZZ_RUNS=100000 npm test -- fuzz` runs
 * longer from a fresh seed (printed by fast-check with any counterexample), and
 * `FUZZ_SEED=<n>` replays one.
 */
import type { Parameters } from 'fast-check';

const RUNS = process.env.FUZZ_RUNS === undefined ? undefined : Number(process.env.FUZZ_RUNS);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** The CI seed: any fixed number would do. */
const CI_SEED = 20261130;

/** fast-check parameters: `ciRuns` cases in CI, FUZZ_RUNS on demand (scaled by `share` for costly properties). */
export function fuzzParameters<T>(ciRuns: number, share = 1): Parameters<T> {
  const numRuns = RUNS === undefined ? ciRuns : Math.max(1, Math.round(RUNS * share));
  const seed = SEED ?? (RUNS === undefined ? CI_SEED : Date.now() ^ (process.pid << 8));
  return { numRuns, seed };
}

/** A test's time bound: the CI runs fit the suite's default; on-demand runs may take long. */
export const FUZZ_TIMEOUT_MS = RUNS === undefined ? 120_000 : 6 * 60 * 60 * 1000;
