/**
 * Histogram observations without prom-client on the connection path. Each label set (a
 * listener, an upstream) owns one BucketCounts, bound once when its recorder is made, so
 * that observing is a bucket search and two additions: no label hashing, no allocation.
 * At scrape time `histogramMetric` presents them to a prom-client registry in the shape
 * its own histograms have (cumulative `_bucket` samples with `le`, `_sum`, `_count`), so
 * the text exposition and the workers' aggregation treat them like any other histogram.
 */
import type { Registry } from 'prom-client';

/** One exported sample, in the shape prom-client's registry formats and aggregates. */
interface Sample {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

export class BucketCounts {
  /** Observations per bucket (not cumulative); the last slot is above every bound (+Inf). */
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const { bounds } = this;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }

  /** The samples of one label set, as prom-client's histograms export them. */
  samples(name: string, labels: Readonly<Record<string, string>>): Sample[] {
    const samples: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += this.counts[i]!;
      samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative });
    });
    samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: this.count });
    samples.push({ metricName: `${name}_sum`, labels: { ...labels }, value: this.sum });
    samples.push({ metricName: `${name}_count`, labels: { ...labels }, value: this.count });
    return samples;
  }
}

export interface LabeledCounts {
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: BucketCounts;
}

/** Registers a histogram whose label sets are read from `current()` at each scrape. */
export function histogramMetric(registry: Registry, name: string, help: string, current: () => Iterable<LabeledCounts>): void {
  registry.registerMetric({
    name,
    help,
    get: () => {
      const values: Sample[] = [];
      for (const { labels, counts } of current()) values.push(...counts.samples(name, labels));
      return Promise.resolve({ name, help, type: 'histogram', aggregator: 'sum', values });
    },
    // prom-client types registerMetric() with its own Metric class, but its registry reads only
    // `name` and calls `get()` (and the aggregator reads `aggregator` from what get() answers).
  } as unknown as Parameters<Registry['registerMetric']>[0]);
}
