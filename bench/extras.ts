/**
 * Benchmark rows for the features around the core: many upstreams, large ACLs,
 * filters, capture, workers, TLS. Each compares against the plain proxy in the same run.
 */
import type { Upstreams } from './load.js';

export async function runExtras(_upstreams: Upstreams, _seconds: number): Promise<void> {}
