/**
 * Benchmark rows for the features around the core, each against the plain proxy in the
 * same run: 1,000 upstreams, a 100,000-CIDR access list, a replace filter, pcap capture,
 * TLS termination, two workers, and limits shared through Redis (limits_scope: cluster).
 */
import { mkdtempSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { benchmarkAccessList } from './access-list.js';
import { benchmarkPick } from './balancer-pick.js';
import { connectionRate, downloadRate, measureRate, repeatRate, sleep, startEchoServers, type Upstreams } from './load.js';
import { startTcpproxy } from './proxy-process.js';
import { ratio } from './report.js';
import { clusterConnectionRates } from './cluster.js';

const MiB = 1024 * 1024;

interface ExtraRow {
  metric: string;
  unit: string;
  baseline: number;
  feature: number;
  baselineLabel: string;
}

/** A throwaway CA-less self-signed certificate for the TLS rows (openssl is on the machine). */
function selfSigned(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tcpproxy-bench-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

async function tlsDownloadRate(port: number, seconds: number): Promise<number> {
  let bytes = 0;
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  socket.on('data', (c: Buffer) => (bytes += c.length));
  await once(socket, 'secureConnect');
  const rate = await measureRate(() => bytes, seconds);
  socket.destroy();
  return rate;
}

function tlsHandshakeRate(port: number, clients: number, seconds: number): Promise<number> {
  return repeatRate(clients, seconds, async () => {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect');
    socket.destroy();
  });
}

export async function runExtras(upstreams: Upstreams, seconds: number): Promise<void> {
  const rows: ExtraRow[] = [];
  const progress = (row: ExtraRow): void => {
    rows.push(row);
    process.stderr.write(`  ${row.metric}: ${row.baselineLabel}=${row.baseline.toFixed(1)} feature=${row.feature.toFixed(1)}\n`);
  };
  const many = await startEchoServers(1000);
  const capture = join(mkdtempSync(join(tmpdir(), 'tcpproxy-bench-pcap-')), 'bench.pcap');
  const { cert, key } = selfSigned();
  const source = `127.0.0.1:${upstreams.source}`;
  const echo = `127.0.0.1:${upstreams.echo}`;
  const proxy = await startTcpproxy({
    listeners: [
      { name: 'one', listen: '127.0.0.1:0', upstreams: [echo] },
      { name: 'many', listen: '127.0.0.1:0', upstreams: many.ports.map((port) => `127.0.0.1:${port}`) },
      { name: 'plain', listen: '127.0.0.1:0', upstreams: [source] },
      { name: 'replace', listen: '127.0.0.1:0', upstreams: [source], filters: [{ type: 'replace', direction: 'to_client', match: 'needle', with: 'NEEDLE' }] },
      { name: 'capture', listen: '127.0.0.1:0', upstreams: [source], inspect: { capture, capture_max_bytes: 64 * MiB, capture_keep: 1 } },
      { name: 'tls', listen: '127.0.0.1:0', upstreams: [source], tls: { cert, key } },
      { name: 'tls-echo', listen: '127.0.0.1:0', upstreams: [echo], tls: { cert, key } },
    ],
  });
  const port = (name: string): number => proxy.ports.get(name)!;
  let plain32 = 0;
  let one = 0;
  try {
    one = await connectionRate(port('one'), 50, seconds);
    progress({
      metric: 'new connections/s, 1,000 upstreams (round robin)',
      unit: 'conn/s',
      baseline: one,
      feature: await connectionRate(port('many'), 50, seconds),
      baselineLabel: '1 upstream',
    });
    const plain = (await downloadRate(port('plain'), 1, seconds)) / MiB;
    progress({
      metric: 'throughput with a replace filter (to_client)',
      unit: 'MiB/s',
      baseline: plain,
      feature: (await downloadRate(port('replace'), 1, seconds)) / MiB,
      baselineLabel: 'no filter',
    });
    progress({
      metric: 'throughput with pcap capture',
      unit: 'MiB/s',
      baseline: plain,
      feature: (await downloadRate(port('capture'), 1, seconds)) / MiB,
      baselineLabel: 'no capture',
    });
    progress({
      metric: 'throughput with TLS termination',
      unit: 'MiB/s',
      baseline: plain,
      feature: (await tlsDownloadRate(port('tls'), seconds)) / MiB,
      baselineLabel: 'plaintext',
    });
    progress({
      metric: 'TLS handshakes/s through the proxy (50 clients)',
      unit: 'conn/s',
      baseline: one,
      feature: await tlsHandshakeRate(port('tls-echo'), 50, seconds),
      baselineLabel: 'plain conn/s',
    });
    plain32 = (await downloadRate(port('plain'), 32, seconds)) / MiB;
  } finally {
    proxy.child.kill('SIGKILL');
    many.servers.forEach((s) => s.close());
  }
  const workers = await startTcpproxy({
    workers: 2,
    listeners: [
      { name: 'echo', listen: '127.0.0.1:0', upstreams: [echo] },
      { name: 'source', listen: '127.0.0.1:0', upstreams: [source] },
    ],
  });
  await sleep(1000); // both workers listening
  try {
    progress({
      metric: 'new connections/s with --workers 2',
      unit: 'conn/s',
      baseline: one,
      feature: await connectionRate(workers.ports.get('echo')!, 50, seconds),
      baselineLabel: '1 process',
    });
    progress({
      metric: 'throughput, 32 streams, with --workers 2',
      unit: 'MiB/s',
      baseline: plain32,
      feature: (await downloadRate(workers.ports.get('source')!, 32, seconds)) / MiB,
      baselineLabel: '1 process',
    });
  } finally {
    workers.child.kill('SIGTERM');
  }
  const cluster = await clusterConnectionRates(echo, 50, seconds);
  if (cluster) {
    const { local, cluster: shared } = cluster;
    progress({
      metric: 'new connections/s, limits_scope: cluster (Redis on loopback)',
      unit: 'conn/s',
      baseline: local.rate,
      feature: shared.rate,
      baselineLabel: 'same limits, local',
    });
    progress({
      metric: 'proxy CPU per new connection, limits_scope: cluster',
      unit: 'µs',
      baseline: local.proxyCpu,
      feature: shared.proxyCpu,
      baselineLabel: 'local',
    });
    progress({ metric: 'redis-server CPU per new connection', unit: 'µs', baseline: local.redisCpu, feature: shared.redisCpu, baselineLabel: 'local' });
  }
  const lines = [
    '### Features, each against the plain proxy in the same run',
    '',
    '| metric | unit | baseline | value | ratio |',
    '|---|---|---:|---:|---:|',
    ...rows.map(
      (r) => `| ${r.metric} | ${r.unit} | ${r.baseline.toFixed(0)} (${r.baselineLabel}) | ${r.feature.toFixed(0)} | ${ratio(r.feature, r.baseline)} |`,
    ),
    '',
    '### Policy decisions (in-process micro-benchmarks)',
    '',
    '| decision | ns per connection |',
    '|---|---:|',
    `| access list, 100,000 CIDRs (mixed IPv4/IPv6) | ${benchmarkAccessList(100_000, 200_000).toFixed(0)} |`,
    ...(['round_robin', 'least_connections', 'random', 'source_hash'] as const).flatMap((s) => [
      `| pick ${s}, 1 upstream | ${benchmarkPick(s, 1, 200_000).toFixed(0)} |`,
      `| pick ${s}, 1,000 upstreams | ${benchmarkPick(s, 1000, 200_000).toFixed(0)} |`,
    ]),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
