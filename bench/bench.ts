/**
 * `npm run bench`: the same traffic over a direct connection, through tcpproxy, and
 * through a naive `socket.pipe()` proxy, in one run; prints a Markdown table with the
 * ratios. The proxies run in their own processes; this process generates the load and
 * runs the upstream servers. `npm run bench -- --quick` runs shorter measurements.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { connectionRate, downloadRate, openIdle, pingPong, sleep, startUpstreams, uploadRate, type Upstreams } from './load.js';
import { cpuMicros, freePorts, ROOT, rssKiB, startTcpproxy } from './proxy-process.js';
import { ratio } from './report.js';

const QUICK = process.argv.includes('--quick');
const SECONDS = QUICK ? 1 : 3;
const IDLE_CONNECTIONS = QUICK ? 1000 : 5000;

interface Path {
  name: string;
  ports: { source: number; sink: number; echo: number };
  pid: number | undefined;
}

interface Row {
  metric: string;
  unit: string;
  direct?: number | undefined;
  proxy: number;
  naive?: number | undefined;
  higherIsBetter: boolean;
}

async function startNaive(upstreams: Upstreams): Promise<{ child: ChildProcess; path: Path }> {
  const ports = await freePorts(3);
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'dist/bench/naive-proxy.js'),
      String(ports[0]),
      String(upstreams.source),
      String(ports[1]),
      String(upstreams.sink),
      String(ports[2]),
      String(upstreams.echo),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(child.stdout, 'data');
  return { child, path: { name: 'naive', ports: { source: ports[0]!, sink: ports[1]!, echo: ports[2]! }, pid: child.pid } };
}

const MiB = 1024 * 1024;

async function measure(paths: Path[], rows: Row[]): Promise<void> {
  const each = async (metric: string, unit: string, higherIsBetter: boolean, fn: (p: Path) => Promise<number>): Promise<void> => {
    const values: Record<string, number> = {};
    for (const path of paths) {
      values[path.name] = await fn(path);
      await sleep(200);
    }
    rows.push({ metric, unit, direct: values.direct, proxy: values.tcpproxy!, naive: values.naive, higherIsBetter });
    process.stderr.write(`  ${metric}: ${paths.map((p) => `${p.name}=${values[p.name]!.toFixed(1)}`).join('  ')}\n`);
  };
  await each('throughput, 1 stream, server -> client', 'MiB/s', true, async (p) => (await downloadRate(p.ports.source, 1, SECONDS)) / MiB);
  await each('throughput, 1 stream, client -> server', 'MiB/s', true, async (p) => (await uploadRate(p.ports.sink, 1, SECONDS)) / MiB);
  await each('throughput, 32 streams, server -> client', 'MiB/s', true, async (p) => (await downloadRate(p.ports.source, 32, SECONDS)) / MiB);
  // The proxy process's CPU time over the connection-rate test, per connection it carried:
  // what a regression of the per-connection cost shows in, whatever the load generator's speed.
  const cpuPerConnection: Record<string, number> = {};
  await each('new connections (50 clients, 64 B echo)', 'conn/s', true, async (p) => {
    const cpuBefore = p.pid === undefined ? 0 : cpuMicros(p.pid);
    const startedAt = performance.now();
    const rate = await connectionRate(p.ports.echo, 50, SECONDS);
    const connections = (rate * (performance.now() - startedAt)) / 1000;
    if (p.pid !== undefined) cpuPerConnection[p.name] = (cpuMicros(p.pid) - cpuBefore) / connections;
    return rate;
  });
  rows.push({
    metric: 'proxy CPU per proxied connection (connection-rate test)',
    unit: 'µs',
    proxy: cpuPerConnection.tcpproxy!,
    naive: cpuPerConnection.naive,
    higherIsBetter: false,
  });
  const latency: Record<string, Record<string, { p50: number; p99: number }>> = {};
  for (const connections of [1, 100]) {
    latency[connections] = {};
    for (const path of paths) latency[connections][path.name] = await pingPong(path.ports.echo, connections, SECONDS);
    for (const q of ['p50', 'p99'] as const) {
      const v = latency[connections];
      rows.push({
        metric: `ping-pong latency ${q}, ${connections} conn`,
        unit: 'µs',
        direct: v.direct?.[q],
        proxy: v.tcpproxy![q],
        naive: v.naive?.[q],
        higherIsBetter: false,
      });
    }
  }
  for (const path of paths) {
    if (path.name === 'direct') continue;
    const before = rssKiB(path.pid!);
    const close = await openIdle(path.ports.echo, IDLE_CONNECTIONS);
    await sleep(500);
    const after = rssKiB(path.pid!);
    close();
    const perConnection = ((after - before) * 1024) / IDLE_CONNECTIONS / 1024;
    const row = rows.find((r) => r.metric.startsWith('RSS per idle'));
    if (row) row[path.name === 'naive' ? 'naive' : 'proxy'] = perConnection;
    else
      rows.push({
        metric: `RSS per idle proxied connection (${IDLE_CONNECTIONS})`,
        unit: 'KiB',
        proxy: perConnection,
        higherIsBetter: false,
        ...(path.name === 'naive' && { naive: perConnection }),
      });
    await sleep(1000);
  }
}

function format(value: number | undefined): string {
  if (value === undefined) return '-';
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function printTable(title: string, rows: Row[]): void {
  const lines = [
    `### ${title}`,
    '',
    '| metric | unit | direct | tcpproxy | tcpproxy / direct | naive pipe() | tcpproxy / naive |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.metric} | ${r.unit} | ${format(r.direct)} | ${format(r.proxy)} | ${ratio(r.proxy, r.direct)} | ${format(r.naive)} | ${ratio(r.proxy, r.naive)} |`,
    ),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  process.stderr.write(
    `bench: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, ${new Date().toISOString()}${QUICK ? ' (quick)' : ''}\n`,
  );
  const upstreams = await startUpstreams();
  const proxy = await startTcpproxy({
    listeners: [
      { name: 'source', listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${upstreams.source}`] },
      { name: 'sink', listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${upstreams.sink}`] },
      { name: 'echo', listen: '127.0.0.1:0', upstreams: [`127.0.0.1:${upstreams.echo}`] },
    ],
  });
  const naive = await startNaive(upstreams);
  const paths: Path[] = [
    { name: 'direct', ports: { source: upstreams.source, sink: upstreams.sink, echo: upstreams.echo }, pid: undefined },
    { name: 'tcpproxy', ports: { source: proxy.ports.get('source')!, sink: proxy.ports.get('sink')!, echo: proxy.ports.get('echo')! }, pid: proxy.child.pid },
    naive.path,
  ];
  const rows: Row[] = [];
  try {
    await measure(paths, rows);
  } finally {
    proxy.child.kill('SIGKILL');
    naive.child.kill('SIGKILL');
  }
  printTable(`Core data path (${cpus().length} cores, node ${process.version}, ${new Date().toISOString().slice(0, 10)})`, rows);
  const { runExtras } = await import('./extras.js');
  await runExtras(upstreams, SECONDS);
  upstreams.close();
  process.exit(0);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
