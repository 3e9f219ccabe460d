/**
 * How long a reload takes: a runtime with 20 listeners (two upstreams each, limits,
 * an access list, on_limit: queue) reloaded 200 times onto alternating settings.
 * Prints the median and the 95th percentile. Run: `npm run build && node dist/bench/reload-time.js`.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { buildSnapshot } from '../src/config/load.js';
import { ProxyRuntime } from '../src/runtime/runtime.js';

const LISTENERS = 20;
const RELOADS = 200;

function snapshot(generation: number) {
  return buildSnapshot({
    log: { level: 'error' },
    listeners: Array.from({ length: LISTENERS }, (_, index) => ({
      name: `l${index}`,
      listen: '127.0.0.1:0',
      upstreams: [`127.0.0.1:${20_000 + index}`, { address: `127.0.0.2:${20_000 + index}`, weight: 1 + (generation % 3) }],
      balance: 'least_connections',
      max_connections: 100 + generation,
      max_connections_per_ip: 10,
      on_limit: 'queue',
      access: { allow: ['127.0.0.0/8', '10.0.0.0/8'] },
    })),
  });
}

const runtime = new ProxyRuntime(snapshot(0), pino({ level: 'silent' }));
await runtime.start();
const times: number[] = [];
for (let generation = 1; generation <= RELOADS; generation++) {
  const next = snapshot(generation);
  const started = performance.now();
  const result = await runtime.reload(next);
  times.push(performance.now() - started);
  if (!result.ok) throw new Error(`reload failed: ${result.error}`);
}
await runtime.shutdown(0);
times.sort((a, b) => a - b);
const at = (q: number): string => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
console.log(`reload of ${LISTENERS} listeners, ${RELOADS} times: median ${at(0.5)} ms, p95 ${at(0.95)} ms`);
